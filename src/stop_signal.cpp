#include "stop_signal.h"

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>

namespace harsanyi {
namespace {

// The first stop signal's number, 0 while none arrived. A lock-free atomic int is
// async-signal-safe to store from a handler.
std::atomic<int> g_signal{0};
static_assert(std::atomic<int>::is_always_lock_free, "the stop flag must be lock-free");
std::atomic<bool> g_announce{false}, g_tty{false};

// write(2) is async-signal-safe; the messages are literals. On a terminal the progress line is
// redrawn in place, so the message starts on a line of its own.
void announce(const char* text) {
  if (g_tty.load(std::memory_order_relaxed)) {
    const ssize_t ignored = write(STDERR_FILENO, "\n", 1);
    (void)ignored;
  }
  const ssize_t ignored = write(STDERR_FILENO, text, std::strlen(text));
  (void)ignored;
}

extern "C" void on_stop_signal(int signal) {
  int none = 0;
  g_signal.compare_exchange_strong(none, signal);
  if (!g_announce.load(std::memory_order_relaxed)) return;
  switch (signal) {
    case SIGTERM:
      announce("run: SIGTERM received: stopping after the epoch in flight (another SIGTERM ends "
               "the run now)\n");
      break;
    case SIGINT:
      announce("run: SIGINT received: stopping after the epoch in flight (another SIGINT ends "
               "the run now)\n");
      break;
    case SIGUSR1:
      announce("run: SIGUSR1 received: stopping after the epoch in flight (another SIGUSR1 ends "
               "the run now)\n");
      break;
    case SIGUSR2:
      announce("run: SIGUSR2 received: stopping after the epoch in flight (another SIGUSR2 ends "
               "the run now)\n");
      break;
    default:
      break;
  }
}

}  // namespace

void install_stop_handlers(bool announce_signals) {
  g_announce.store(announce_signals);
  g_tty.store(isatty(STDERR_FILENO) != 0);
  struct sigaction action;
  std::memset(&action, 0, sizeof action);
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  // SA_RESETHAND: a second signal of the same kind takes the default action (ends the process);
  // SA_RESTART: system calls interrupted by the first one resume (file I/O, MPI progress).
  action.sa_flags = SA_RESETHAND | SA_RESTART;
  const int signals[] = {SIGTERM, SIGINT, SIGUSR1, SIGUSR2};
  for (int s : signals) sigaction(s, &action, nullptr);
}

int stop_signal() { return g_signal.load(std::memory_order_relaxed); }

const char* stop_signal_name(int signal) {
  switch (signal) {
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGUSR1: return "SIGUSR1";
    case SIGUSR2: return "SIGUSR2";
    default: return "a signal";
  }
}

}  // namespace harsanyi
