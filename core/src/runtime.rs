//! The shape of weft's async runtimes: how many threads run them.

/// The async runtime's threads when nothing says otherwise: a quarter of the CPUs, at
/// least one. Async work in weft is short steps handing messages between connections and
/// tasks; on more threads most of those hand-offs cross threads, each a futex wake and a
/// context switch, and on a small machine the threads of several processes outnumber the
/// cores. Tasks' own work runs on threads and processes of its own. On 2 CPUs, one thread
/// per process against two: the queue bench's batch went from 176,000 to 224,000-240,000
/// tasks/s and a single task's p50 through a submitter from 0.216 to 0.142 ms; wordcount
/// was unchanged and sort no slower.
pub fn default_io_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |cpus| (cpus.get() / 4).max(1))
}
