/// @file stop_signal.h
/// @brief A graceful stop for long runs: SIGTERM, SIGINT, SIGUSR1 or SIGUSR2 (a batch system's
/// warning before a time limit or a preemption, a Ctrl-C) only sets a flag; `harsanyi run` reads
/// it at safe points (after each epoch written, after each training checkpoint), where every rank
/// agrees on it collectively, then closes its files resumable and exits with kStopExitCode.
///
/// The handler is async-signal-safe (it stores one lock-free atomic) and resets itself to the
/// default action, so a second signal of the same kind ends the process at once.
#pragma once

namespace harsanyi {

/// Exit code of a run stopped by a signal: the study is resumable with `--resume`.
constexpr int kStopExitCode = 3;

/// Installs the handler for SIGTERM, SIGINT, SIGUSR1 and SIGUSR2 (one-shot per signal). With
/// `announce` (rank 0 of a job), the handler also writes one line to stderr saying that the
/// signal arrived and the run will stop at its next safe point.
void install_stop_handlers(bool announce);

/// The number of the first stop signal received since install_stop_handlers(), else 0.
int stop_signal();

/// "SIGTERM", "SIGUSR1", ... for a signal number (or "signal N").
const char* stop_signal_name(int signal);

}  // namespace harsanyi
