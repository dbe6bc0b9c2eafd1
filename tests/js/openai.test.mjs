// The official OpenAI Node client against `unmask serve`: models, chat (plain and
// streamed with usage), legacy completions, and errors surfacing as APIError.
import { test } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { startServer } from "./server.mjs";

test("OpenAI Node client: chat, streaming, completions, errors", async () => {
  const server = await startServer(["--api-key", "test-key"]);
  try {
    const client = new OpenAI({ baseURL: server.url + "/v1", apiKey: "test-key", maxRetries: 0 });
    const models = await client.models.list();
    assert.equal(models.data[0].id, "llada-tiny");

    const request = {
      model: "llada-tiny",
      messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Tell me about diffusion." }],
      max_completion_tokens: 32,
      temperature: 0.8,
      seed: 5,
    };
    const plain = await client.chat.completions.create(request);
    assert.equal(plain.object, "chat.completion");
    assert.equal(plain.choices.length, 1);
    assert.equal(plain.choices[0].message.role, "assistant");
    assert.ok(["stop", "length"].includes(plain.choices[0].finish_reason));
    assert.ok(plain.usage.prompt_tokens > 0);
    assert.ok(plain.usage.completion_tokens <= 32);

    const stream = await client.chat.completions.create({ ...request, stream: true, stream_options: { include_usage: true } });
    let text = "";
    let finish = null;
    let usage = null;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      if (chunk.usage) usage = chunk.usage;
      for (const choice of chunk.choices) {
        text += choice.delta.content ?? "";
        if (choice.finish_reason) finish = choice.finish_reason;
      }
    }
    assert.ok(chunks >= 3, `only ${chunks} chunks`);
    assert.equal(text, plain.choices[0].message.content, "seeded stream equals the plain answer");
    assert.equal(finish, plain.choices[0].finish_reason);
    assert.deepEqual(usage, plain.usage);

    const completion = await client.completions.create({ model: "llada-tiny", prompt: "Once upon a time", max_tokens: 16 });
    assert.equal(completion.object, "text_completion");
    assert.equal(typeof completion.choices[0].text, "string");

    await assert.rejects(client.chat.completions.create({ ...request, model: "gpt-4o" }), (e) => {
      assert.ok(e instanceof OpenAI.APIError);
      assert.equal(e.status, 404);
      assert.equal(e.code, "model_not_found");
      return true;
    });
    await assert.rejects(client.chat.completions.create({ ...request, messages: [] }), (e) => e.status === 400);
    const stranger = new OpenAI({ baseURL: server.url + "/v1", apiKey: "wrong", maxRetries: 0 });
    await assert.rejects(stranger.models.list(), (e) => e.status === 401);
  } finally {
    const { code } = await server.stop();
    assert.equal(code, 0, "graceful shutdown exits 0:\n" + server.log());
  }
});
