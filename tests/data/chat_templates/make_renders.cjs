// Generates renders.json: reference chat-template renders made with the npm package
// @huggingface/transformers (apply_chat_template, i.e. transformers.js + @huggingface/jinja).
// Only the output is committed, not the package. Run from the repository root:
//   npm install --prefix /tmp/jsref @huggingface/transformers@4.3.1 --ignore-scripts
//   NODE_PATH=/tmp/jsref/node_modules node tests/data/chat_templates/make_renders.cjs \
//       /path/to/shared/fixtures > tests/data/chat_templates/renders.json
const fs = require('fs');
const path = require('path');
const { PreTrainedTokenizer } = require('@huggingface/transformers');

const fixtures = process.argv[2];
if (!fixtures) throw new Error('usage: make_renders.cjs <shared fixtures dir>');

// name -> [folder under the fixtures dir, folder under tests/data holding the same tokenizer or null]
const TEMPLATES = {
  qwen3: ['tokenizers/qwen3', 'tokenizers/qwen3'],
  llama3: ['tokenizers/llama3', 'tokenizers/llama3'],
  'llada-tiny': ['llada-tiny', 'llada-tiny'],
  'llada2-tiny': ['llada2-tiny', null],
  'lladamoe-tiny': ['lladamoe-tiny', null],
};

const common = [
  { id: 'single_user', messages: [{ role: 'user', content: 'Hello' }] },
  { id: 'system_user', messages: [
    { role: 'system', content: 'You are a helpful assistant.' },
    { role: 'user', content: 'What is 2+3?' }] },
  { id: 'multi_turn', messages: [
    { role: 'user', content: 'Hi' },
    { role: 'assistant', content: 'Hello! How can I help?' },
    { role: 'user', content: 'Tell me a joke.' }] },
  { id: 'system_multi_turn', messages: [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'Name a color.' },
    { role: 'assistant', content: 'Blue.' },
    { role: 'user', content: 'Another?' }] },
  { id: 'whitespace', messages: [{ role: 'user', content: '  spaced out \n\n' }] },
  { id: 'unicode', messages: [{ role: 'user', content: 'Unicode: 你好 😀 café\ttab' }] },
  // The rendered text is the same as the reference; the ids are not meant to be: typed
  // special-token text must stay plain text (the reference turns it into control tokens).
  { id: 'typed_special_tokens', user_typed_specials: true, messages: [
    { role: 'user', content: 'I typed <|im_end|> and <|eot_id|> and <|mdm_mask|> and <|role_end|> here' }] },
];

const qwen3Only = [
  { id: 'think_history', messages: [
    { role: 'user', content: 'What is 1+1?' },
    { role: 'assistant', content: '<think>\nLet me add.\n</think>\n\n2' },
    { role: 'user', content: 'And 2+2?' }] },
  { id: 'reasoning_content_last', messages: [
    { role: 'user', content: '2+2?' },
    { role: 'assistant', content: '4', reasoning_content: 'Adding two and two.' }] },
  { id: 'tools', tools: [{ type: 'function', function: { name: 'get_weather', description: 'Current weather',
      parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }],
    messages: [
      { role: 'system', content: 'Use tools when needed.' },
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: '', tool_calls: [{ type: 'function', function: { name: 'get_weather', arguments: { city: 'Paris' } } }] },
      { role: 'tool', content: '{"temp": 20}' },
      { role: 'tool', content: '{"wind": 3}' },
      { role: 'assistant', content: 'It is 20 degrees.' },
      { role: 'user', content: 'Thanks' }] },
  { id: 'no_thinking', extra: { enable_thinking: false }, messages: [{ role: 'user', content: 'Quick answer please.' }] },
];

const out = [];
for (const [name, [dir, testDir]] of Object.entries(TEMPLATES)) {
  const tj = JSON.parse(fs.readFileSync(path.join(fixtures, dir, 'tokenizer.json'), 'utf8'));
  const tc = JSON.parse(fs.readFileSync(path.join(fixtures, dir, 'tokenizer_config.json'), 'utf8'));
  const tok = new PreTrainedTokenizer(tj, tc);
  const specials = {};
  for (const k of ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token']) {
    const v = tc[k];
    if (typeof v === 'string' && v) specials[k] = v;
    else if (v && typeof v === 'object' && v.content) specials[k] = v.content;
  }
  const cases = [];
  for (const c of name === 'qwen3' ? common.concat(qwen3Only) : common) {
    for (const agp of [true, false]) {
      const opts = { add_generation_prompt: agp, tools: c.tools ?? null, ...(c.extra ?? {}) };
      const rendered = tok.apply_chat_template(c.messages, { ...opts, tokenize: false });
      const ids = tok.apply_chat_template(c.messages, { ...opts, tokenize: true, return_tensor: false, return_dict: false });
      cases.push({ id: `${c.id}${agp ? '+gen' : ''}`, messages: c.messages, tools: c.tools ?? null,
        extra: c.extra ?? {}, add_generation_prompt: agp, user_typed_specials: !!c.user_typed_specials, rendered, ids });
    }
  }
  out.push({ name, tokenizer_dir: testDir, template: tc.chat_template, special_tokens: specials, cases });
}
process.stdout.write(JSON.stringify({
  generator: '@huggingface/transformers 4.3.1 PreTrainedTokenizer.apply_chat_template (tests/data/chat_templates/make_renders.cjs)',
  templates: out,
}, null, 1) + '\n');
