#include "server/client_socket.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <charconv>
#include <filesystem>

namespace unmask::server {

namespace {

// Numeric host and port of a socket address (what httplib reports: getnameinfo).
bool host_and_port(const sockaddr_storage& a, socklen_t len, std::string* host, int* port) {
  char h[NI_MAXHOST], s[NI_MAXSERV];
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&a), len, h, sizeof h, s, sizeof s, NI_NUMERICHOST | NI_NUMERICSERV) != 0)
    return false;
  *host = h;
  *port = std::atoi(s);
  return true;
}

bool has_ends(int fd, const ConnectionEnds& ends) {
  struct stat st{};
  if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) return false;
  sockaddr_storage local{}, peer{};
  socklen_t local_len = sizeof local, peer_len = sizeof peer;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) != 0) return false;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0) return false;  // not connected
  std::string local_host, peer_host;
  int local_port = -1, peer_port = -1;
  if (!host_and_port(local, local_len, &local_host, &local_port) || !host_and_port(peer, peer_len, &peer_host, &peer_port))
    return false;
  return local_port == ends.local_port && peer_port == ends.remote_port && peer_host == ends.remote_addr &&
         (ends.local_addr.empty() || local_host == ends.local_addr);
}

}  // namespace

int find_connection_socket(const ConnectionEnds& ends) {
  if (ends.local_port <= 0 || ends.remote_port <= 0) return -1;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
    const std::string name = entry.path().filename().string();
    int fd = -1;
    if (std::from_chars(name.data(), name.data() + name.size(), fd).ec != std::errc()) continue;
    if (has_ends(fd, ends)) return fd;
  }
  return -1;
}

bool peer_closed(int socket) {
  pollfd p{socket, POLLRDHUP, 0};
  if (poll(&p, 1, 0) <= 0) return false;
  return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

}  // namespace unmask::server
