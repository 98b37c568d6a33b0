/* runtime/pool.h - nnfs_fast's parallel runtime: a caller-runs pool of native threads.
 *
 * Included by runtime/openmp.pyx only (one pool per process); every kernel reaches it through
 * kernels/parallel.pxd's run_tasks, which calls nnfs_pool_run below.
 *
 * Design note
 * -----------
 * Why not OpenMP parallel regions (what run_tasks used until now): a region ends in a barrier
 * that waits for every team thread. Beside another pool that busy-waits -- NumPy's OpenBLAS
 * spins up to ~0.1 s after each threaded np.dot (and no longer yields on x86-64), PyTorch's
 * pool, LLVM libomp's KMP_BLOCKTIME -- or a busy process, one of our threads often has no core,
 * and the whole call waits for the scheduler. Measured on the 2-core development machine
 * (benchmarks/RESULTS.md, "Threads beside other pools"): the 2-thread (128,784,128) layer took
 * 8 ms alternating call by call with NumPy against 1 ms on one thread, and with other builds
 * running 16x its one-thread time. No setting of ours fixes it: OpenBLAS reads its timeout
 * when NumPy is imported, GOMP_SPINCOUNT only shortens *our* spinning, and libomp ignores it.
 * What we do instead (option (a) of issue 11, "caller-runs"): a job is (fn, ctx, n_tasks).
 * The calling thread publishes it, then claims tasks itself from a shared counter, as do the
 * pool's workers; the call returns when every task is *done*, not when every worker has
 * arrived. A worker that gets no core claims nothing, so a call is never slower than the
 * caller doing all the work alone, plus the tasks others had already started. Results stay
 * bit-identical for any thread count and any split of tasks among threads: each task owns
 * its outputs, and which thread runs a task changes nothing in it.
 * What caller-runs alone does not cover, measured with other builds keeping both cores busy:
 * a worker preempted *inside* a task it claimed, and a worker that the scheduler wakes onto
 * the caller's own core (no idle core elsewhere), where it ran in the caller's place and then
 * spun -- a 35 us job of 8 tasks took 67 us. So (1) a worker that finds itself on the core
 * the caller published from leaves the job (49 us there, and the guard below then keeps such
 * calls on one thread), and (2) the guard, option (b) of the issue kept to one place: a
 * sample of jobs compares the job's wall time with the caller's own CPU time scaled to all
 * tasks (what one thread would have taken); while recent jobs lose, calls run on the caller
 * alone for 2 ms, doubling to 256 ms while later tries keep losing. (b) alone could not
 * replace (a): a fallback decided from past calls cannot react inside a call, and OpenBLAS's
 * spinning starts and stops with every np.dot. (c), running OpenBLAS on our pool, needs
 * OpenBLAS >= 0.3.28 and hangs with a smaller team (OpenBLAS #4770): scikit-learn dropped it.
 *
 * Protocol
 *   word = generation << 32 | next task. The submitter (one at a time: `submit` mutex) first
 *   stores (g, CLOSED), writes the job's fields, then publishes (g, 0). A thread claims task i
 *   by a compare-and-swap (g, i) -> (g, i + 1) after reading the fields; the fields are read
 *   seqlock-style (release fence after CLOSED, acquire fence before the CAS), so a successful
 *   CAS proves the fields it read belong to job g: a late worker holding an old word fails its
 *   CAS and never touches a finished job. `done` counts finished tasks; the caller returns at
 *   done == n_tasks.
 *   Worker k (0-based) has the fixed slot k + 1 (the caller is slot 0) and joins a job only when
 *   k + 1 < the job's n_threads, so per-thread scratch indexed by nnfs_pool_slot() stays below
 *   n_threads.
 *   Idle workers wait for spin_ns (200 us: the kernels of a training step find them awake; on
 *   this VM a sleeping worker cost the caller ~10 us to wake and arrived ~100 us late), with
 *   pause instructions for the first 5 us and then yielding the core between checks, so that
 *   a spinning worker gives way to anyone who wants its core (another pool's worker, our own
 *   caller); then they sleep on a condition variable, and the submitter wakes sleepers only
 *   when there are any. The caller, waiting for tasks others run, waits the same way and
 *   then sleeps too, which frees its core for a worker the scheduler had preempted.
 *   A second Python thread that finds the pool busy runs its tasks itself (one thread) instead
 *   of waiting. A forked child resets the pool (pthread_atfork) and starts new workers at its
 *   first parallel call.
 * Portability: pthreads, or Win32 threads with SRW locks and condition variables; GCC/clang
 * __atomic builtins or MSVC _Interlocked* intrinsics.
 */
#ifndef NNFS_POOL_H
#define NNFS_POOL_H

#include <stdint.h>

typedef void (*nnfs_task_fn)(void* ctx, Py_ssize_t task);

#define NNFS_POOL_MAX_WORKERS 255
#define NNFS_POOL_SPIN_NS 200000           /* default idle spin: 200 us (benchmarks/RESULTS.md) */
#define NNFS_PAUSE_NS 5000                 /* of it, with pause instructions (then yields) */
#define NNFS_POOL_CLOSED 0xFFFFFFFFull     /* "next task" while a job is being written */
#define NNFS_POOL_MAX_TASKS 0xFFFFFFF0ll   /* tasks per job round (the word's low 32 bits) */
#define NNFS_POOL_STACK (2u << 20)         /* worker stack bytes */
/* the guard (see nnfs_guard_record) */
#define NNFS_GUARD_MIN_JOBS 4              /* measured jobs before a verdict */
#define NNFS_GUARD_BACKOFF_NS 2000000      /* first one-thread period: 2 ms ... */
#define NNFS_GUARD_BACKOFF_MAX_NS 256000000 /* ... doubling while the pool keeps losing */
#define NNFS_GUARD_SAMPLE 4                /* measure one job in this many (a CPU clock read
                                            * is a ~0.7 us system call) */

/* ------------------------------------------------------------------- platform shim */
#if defined(_WIN32)
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
#define NNFS_POOL_THREADS "win32"
typedef SRWLOCK nnfs_mutex;
typedef CONDITION_VARIABLE nnfs_cond;
#define NNFS_MUTEX_INIT SRWLOCK_INIT
#define NNFS_COND_INIT CONDITION_VARIABLE_INIT
#define NNFS_TLS __declspec(thread)
static void nnfs_lock(nnfs_mutex* m) { AcquireSRWLockExclusive(m); }
static int nnfs_trylock(nnfs_mutex* m) { return TryAcquireSRWLockExclusive(m) != 0; }
static void nnfs_unlock(nnfs_mutex* m) { ReleaseSRWLockExclusive(m); }
static void nnfs_cond_wait(nnfs_cond* c, nnfs_mutex* m) { SleepConditionVariableSRW(c, m, INFINITE, 0); }
static void nnfs_cond_broadcast(nnfs_cond* c) { WakeAllConditionVariable(c); }
static void nnfs_cond_signal(nnfs_cond* c) { WakeConditionVariable(c); }
static int64_t nnfs_now_ns(void) {
    LARGE_INTEGER f, t;
    QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&t);
    return (int64_t)((double)t.QuadPart * (1e9 / (double)f.QuadPart));
}
static void nnfs_sleep_ns(int64_t ns) { Sleep((DWORD)((ns + 999999) / 1000000)); }
/* no fine per-thread CPU clock (GetThreadTimes ticks every 15.6 ms): wall time */
static int64_t nnfs_thread_cpu_ns(void) { return nnfs_now_ns(); }
static int nnfs_cpu(void) { return (int)GetCurrentProcessorNumber(); }
static void nnfs_yield(void) { SwitchToThread(); }
#else
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <time.h>
#define NNFS_POOL_THREADS "pthreads"
typedef pthread_mutex_t nnfs_mutex;
typedef pthread_cond_t nnfs_cond;
#define NNFS_MUTEX_INIT PTHREAD_MUTEX_INITIALIZER
#define NNFS_COND_INIT PTHREAD_COND_INITIALIZER
#define NNFS_TLS __thread
static void nnfs_lock(nnfs_mutex* m) { pthread_mutex_lock(m); }
static int nnfs_trylock(nnfs_mutex* m) { return pthread_mutex_trylock(m) == 0; }
static void nnfs_unlock(nnfs_mutex* m) { pthread_mutex_unlock(m); }
static void nnfs_cond_wait(nnfs_cond* c, nnfs_mutex* m) { pthread_cond_wait(c, m); }
static void nnfs_cond_broadcast(nnfs_cond* c) { pthread_cond_broadcast(c); }
static void nnfs_cond_signal(nnfs_cond* c) { pthread_cond_signal(c); }
static int64_t nnfs_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
static void nnfs_sleep_ns(int64_t ns) {
    struct timespec ts;
    ts.tv_sec = (time_t)(ns / 1000000000);
    ts.tv_nsec = (long)(ns % 1000000000);
    while (nanosleep(&ts, &ts) != 0) {}
}
/* the core the calling thread runs on, -1 where the system does not say */
#if defined(__linux__) && defined(_GNU_SOURCE)   /* Python.h defines it */
static int nnfs_cpu(void) { return sched_getcpu(); }
#else
static int nnfs_cpu(void) { return -1; }
#endif
static void nnfs_yield(void) { sched_yield(); }
/* CPU time of the calling thread (time it was preempted does not count) */
static int64_t nnfs_thread_cpu_ns(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return nnfs_now_ns();
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
#endif

/* atomics: sequentially consistent unless named otherwise */
#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
typedef volatile __int64 nnfs_atomic;
static __forceinline int64_t nnfs_load(nnfs_atomic* p) {
#if defined(_M_X64)
    int64_t v = *p;             /* x64: aligned 64-bit loads are atomic acquire loads */
    _ReadWriteBarrier();
    return v;
#else
    return _InterlockedCompareExchange64(p, 0, 0);
#endif
}
static __forceinline void nnfs_store(nnfs_atomic* p, int64_t v) { _InterlockedExchange64(p, v); }
static __forceinline int nnfs_cas(nnfs_atomic* p, int64_t expected, int64_t desired) {
    return _InterlockedCompareExchange64(p, desired, expected) == expected;
}
static __forceinline int64_t nnfs_add(nnfs_atomic* p, int64_t v) {
    return _InterlockedExchangeAdd64(p, v) + v;
}
/* the job's fields: volatile pointer-sized accesses are single loads/stores */
#define NNFS_RELAXED_LOAD(x) (x)
#define NNFS_RELAXED_STORE(x, v) ((x) = (v))
#define nnfs_fence_release() MemoryBarrier()
#define nnfs_fence_acquire() MemoryBarrier()
#if defined(_M_IX86) || defined(_M_X64)
#define nnfs_pause() _mm_pause()
#elif defined(_M_ARM64)
#define nnfs_pause() __yield()
#else
#define nnfs_pause() ((void)0)
#endif
#else
typedef volatile int64_t nnfs_atomic;
static inline int64_t nnfs_load(nnfs_atomic* p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
static inline void nnfs_store(nnfs_atomic* p, int64_t v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }
static inline int nnfs_cas(nnfs_atomic* p, int64_t expected, int64_t desired) {
    return __atomic_compare_exchange_n(p, &expected, desired, 0, __ATOMIC_SEQ_CST,
                                       __ATOMIC_SEQ_CST);
}
static inline int64_t nnfs_add(nnfs_atomic* p, int64_t v) {
    return __atomic_add_fetch(p, v, __ATOMIC_SEQ_CST);
}
#define NNFS_RELAXED_LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define NNFS_RELAXED_STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#define nnfs_fence_release() __atomic_thread_fence(__ATOMIC_RELEASE)
#define nnfs_fence_acquire() __atomic_thread_fence(__ATOMIC_ACQUIRE)
#if defined(__x86_64__) || defined(__i386__)
#define nnfs_pause() __builtin_ia32_pause()
#elif defined(__aarch64__) || defined(__arm__)
#define nnfs_pause() __asm__ __volatile__("yield")
#else
#define nnfs_pause() ((void)0)
#endif
#endif

/* ------------------------------------------------------------------------ the pool */
typedef struct {
    /* the job, written by the submitter while `word` says CLOSED */
    nnfs_task_fn volatile fn;
    void* volatile ctx;
    volatile int64_t first;         /* task index of this round's task 0 */
    volatile int64_t n_tasks;
    volatile int64_t n_threads;     /* slots that may join: the caller and workers 0..n-2 */
    volatile int64_t caller_cpu;    /* the core the caller published from (-1: unknown) */
    char pad0[64];
    nnfs_atomic word;               /* generation << 32 | next task */
    char pad1[64];
    nnfs_atomic done;               /* tasks finished in the current round */
    nnfs_atomic caller_waiting;     /* the caller sleeps on done_cond */
    nnfs_atomic sleepers;           /* workers asleep on work_cond */
    nnfs_atomic spin_ns;            /* idle spin before sleeping */
    /* counters for show_config and the tests */
    nnfs_atomic jobs, tasks_by_workers, busy_runs, same_core_skips;
    nnfs_atomic job_ns, wait_ns, caller_sleeps;   /* time in jobs, of it waiting for others */
    /* the guard: written under `submit` (read by the counters' getters) */
    int64_t win_job_ns, win_serial_ns;  /* recent measured jobs (decaying sums): wall time,
                                         * and the estimated one-thread time */
    int64_t win_jobs;                   /* measured jobs in the window */
    int64_t serial_until;               /* calls start on one thread before this time */
    int64_t backoff_ns;                 /* the next one-thread period */
    nnfs_atomic guard_on, guard_sample; /* the guard is active; measure 1 job in sample */
    nnfs_atomic backoffs, serial_runs;  /* one-thread periods; calls they ran on one thread */
    /* test hook (nnfs_pool_stall): worker stall_worker sleeps stall_ns once, where says
     * where; stalling is 1 during the sleep, stalls counts them */
    nnfs_atomic stall_worker, stall_ns, stall_where, stalling, stalls;
    int n_workers;                  /* started; changed under `submit` */
    nnfs_mutex submit;              /* one job at a time */
    nnfs_mutex mutex;               /* guards the two condition variables */
    nnfs_cond work_cond, done_cond;
} nnfs_pool_t;

static nnfs_pool_t nnfs_pool = {
    .spin_ns = NNFS_POOL_SPIN_NS, .stall_worker = -1, .backoff_ns = NNFS_GUARD_BACKOFF_NS,
    .guard_on = 1, .guard_sample = NNFS_GUARD_SAMPLE, .submit = NNFS_MUTEX_INIT,
    .mutex = NNFS_MUTEX_INIT, .work_cond = NNFS_COND_INIT, .done_cond = NNFS_COND_INIT};
static NNFS_TLS int nnfs_slot = 0;  /* 0 on every thread but the pool's workers */

/* The executing thread's slot in the current job: 0 for the caller, 1..n_threads-1 for
 * workers. Per-thread scratch of a job with n_threads threads is indexed by it. */
static int nnfs_pool_slot(void) { return nnfs_slot; }

#define NNFS_GEN(w) ((uint64_t)(w) >> 32)
#define NNFS_NEXT(w) ((uint64_t)(w) & 0xFFFFFFFFull)

static void nnfs_task_done(int64_t n_tasks) {
    if (nnfs_add(&nnfs_pool.done, 1) == n_tasks && nnfs_load(&nnfs_pool.caller_waiting)) {
        nnfs_lock(&nnfs_pool.mutex);
        nnfs_cond_signal(&nnfs_pool.done_cond);
        nnfs_unlock(&nnfs_pool.mutex);
    }
}

#define NNFS_STALL_BEFORE_CLAIM 0    /* holding the word it read: a late worker */
#define NNFS_STALL_IN_TASK 1         /* holding a claimed task: the job stays in flight */

static void nnfs_maybe_stall(int where) {
    int64_t k = nnfs_slot - 1;
    if (k >= 0 && nnfs_load(&nnfs_pool.stall_worker) == k
            && nnfs_load(&nnfs_pool.stall_where) == where
            && nnfs_cas(&nnfs_pool.stall_worker, k, -1)) {
        nnfs_store(&nnfs_pool.stalling, 1);
        nnfs_add(&nnfs_pool.stalls, 1);
        nnfs_sleep_ns(nnfs_load(&nnfs_pool.stall_ns));
        nnfs_store(&nnfs_pool.stalling, 0);
    }
}

/* Claim and run tasks of job generation g until none is left; returns how many ran here. */
static int64_t nnfs_claim(uint64_t g) {
    int64_t ran = 0;
    for (;;) {
        int64_t w = nnfs_load(&nnfs_pool.word);
        int64_t i = (int64_t)NNFS_NEXT(w), n, first;
        nnfs_task_fn fn;
        void* ctx;
        if (NNFS_GEN(w) != g)
            return ran;
        nnfs_maybe_stall(NNFS_STALL_BEFORE_CLAIM);
        n = NNFS_RELAXED_LOAD(nnfs_pool.n_tasks);
        fn = NNFS_RELAXED_LOAD(nnfs_pool.fn);
        ctx = NNFS_RELAXED_LOAD(nnfs_pool.ctx);
        first = NNFS_RELAXED_LOAD(nnfs_pool.first);
        nnfs_fence_acquire();       /* the fields above are job g's if the CAS succeeds */
        if (i >= n)
            return ran;
        if (!nnfs_cas(&nnfs_pool.word, w, w + 1))
            continue;
        nnfs_maybe_stall(NNFS_STALL_IN_TASK);
        fn(ctx, (Py_ssize_t)(first + i));
        ran++;
        nnfs_task_done(n);
    }
}

/* A bounded busy wait: a pause instruction between checks for the first NNFS_PAUSE_NS, then a
 * yield of the core between checks (to another pool's spinning worker, or to our own caller
 * if the scheduler put us on its core), until `limit` ns have passed: then the waiter sleeps. */
typedef struct { int64_t t0, limit; unsigned k; int yielding; } nnfs_waiter;

static void nnfs_wait_begin(nnfs_waiter* w, int64_t limit) {
    w->t0 = nnfs_now_ns();
    w->limit = limit;
    w->k = 0;
    w->yielding = 0;
}

/* One more step of the wait; 0 when it is time to sleep instead. */
static int nnfs_wait_step(nnfs_waiter* w) {
    if (w->yielding || (++w->k & 15) == 0) {
        int64_t dt = nnfs_now_ns() - w->t0;
        if (dt >= w->limit)
            return 0;
        w->yielding = dt >= NNFS_PAUSE_NS;
    }
    if (w->yielding)
        nnfs_yield();
    else
        nnfs_pause();
    return 1;
}

static int nnfs_is_new_job(int64_t w, uint64_t last) {
    return NNFS_GEN(w) != last && NNFS_NEXT(w) != NNFS_POOL_CLOSED;
}

/* Worker side: the word of the first job after generation `last` (spin, then sleep; a
 * worker that was not one of the last job's threads goes straight back to sleep). */
static int64_t nnfs_wait_job(uint64_t last, int spin_first) {
    int64_t w;
    nnfs_waiter wait;
    nnfs_wait_begin(&wait, spin_first ? nnfs_load(&nnfs_pool.spin_ns) : 0);
    do {
        w = nnfs_load(&nnfs_pool.word);
        if (nnfs_is_new_job(w, last))
            return w;
    } while (nnfs_wait_step(&wait));
    nnfs_add(&nnfs_pool.sleepers, 1);
    nnfs_lock(&nnfs_pool.mutex);
    while (!nnfs_is_new_job(w = nnfs_load(&nnfs_pool.word), last))
        nnfs_cond_wait(&nnfs_pool.work_cond, &nnfs_pool.mutex);
    nnfs_unlock(&nnfs_pool.mutex);
    nnfs_add(&nnfs_pool.sleepers, -1);
    return w;
}

typedef struct { int k; uint64_t last; } nnfs_worker_arg;
static nnfs_worker_arg nnfs_worker_args[NNFS_POOL_MAX_WORKERS];

static void nnfs_worker_loop(nnfs_worker_arg* arg) {
    const int k = arg->k;
    uint64_t last = arg->last;
    int64_t ran;
    int joined = 1, cpu;
    nnfs_slot = k + 1;
    for (;;) {
        int64_t w = nnfs_wait_job(last, joined);
        last = NNFS_GEN(w);
        joined = k + 1 < NNFS_RELAXED_LOAD(nnfs_pool.n_threads);
        if (!joined)
            continue;   /* not one of this job's threads (a stale read only skips a job) */
        cpu = nnfs_cpu();
        if (cpu >= 0 && cpu == NNFS_RELAXED_LOAD(nnfs_pool.caller_cpu)
                && nnfs_load(&nnfs_pool.guard_on)) {
            /* woken onto the caller's own core (no idle core elsewhere): working here
             * would only take turns with the caller; sleep at once and give it back */
            nnfs_add(&nnfs_pool.same_core_skips, 1);
            joined = 0;
            continue;
        }
        ran = nnfs_claim(last);
        if (ran)
            nnfs_add(&nnfs_pool.tasks_by_workers, ran);
    }
}

#if defined(_WIN32)
static DWORD WINAPI nnfs_worker_main(LPVOID arg) {
    nnfs_worker_loop((nnfs_worker_arg*)arg);
    return 0;
}
static int nnfs_start_worker(nnfs_worker_arg* arg) {
    HANDLE h = CreateThread(NULL, NNFS_POOL_STACK, nnfs_worker_main, arg,
                            STACK_SIZE_PARAM_IS_A_RESERVATION, NULL);
    if (h == NULL)
        return -1;
    CloseHandle(h);
    return 0;
}
#else
static void* nnfs_worker_main(void* arg) {
    nnfs_worker_loop((nnfs_worker_arg*)arg);
    return NULL;
}
static int nnfs_start_worker(nnfs_worker_arg* arg) {
    /* workers block every signal: Python's handlers run on the main thread */
    pthread_attr_t attr;
    pthread_t tid;
    sigset_t all, old;
    int err;
    if (pthread_attr_init(&attr) != 0)
        return -1;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, NNFS_POOL_STACK);
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    err = pthread_create(&tid, &attr, nnfs_worker_main, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    return err == 0 ? 0 : -1;
}
#endif

/* Start workers until `want` run (under `submit`); fewer if the system refuses threads. */
static void nnfs_ensure_workers(int want) {
    if (want > NNFS_POOL_MAX_WORKERS)
        want = NNFS_POOL_MAX_WORKERS;
    while (nnfs_pool.n_workers < want) {
        nnfs_worker_arg* arg = &nnfs_worker_args[nnfs_pool.n_workers];
        arg->k = nnfs_pool.n_workers;
        arg->last = NNFS_GEN(nnfs_load(&nnfs_pool.word));
        if (nnfs_start_worker(arg) != 0)
            return;
        nnfs_pool.n_workers++;
    }
}

static void nnfs_run_serial(nnfs_task_fn fn, void* ctx, Py_ssize_t n_tasks) {
    Py_ssize_t t;
    for (t = 0; t < n_tasks; t++)
        fn(ctx, t);
}

/* The guard (under `submit`): caller-runs never waits for a worker that has not started a
 * task, but a worker that loses its core *inside* a task, or one whose wake-up preempts the
 * caller on a shared core (a machine whose other cores are busy), still costs time. Every
 * NNFS_GUARD_SAMPLE-th job the caller measures its own CPU time; with c of the n tasks run
 * by it, c CPU-ns of work extrapolate to n * cpu / c on one thread. While recent measured
 * jobs took longer (wall time) than that estimate, the pool loses against one thread: calls
 * then run on the caller alone for backoff_ns (2 ms, doubling up to 256 ms while later
 * probes keep losing), after which the pool is tried again. */
static void nnfs_guard_record(int64_t job_ns, int64_t cpu_ns, int64_t ran, int64_t n) {
    nnfs_pool_t* P = &nnfs_pool;
    if (ran <= 0)
        return;     /* the workers ran everything: no estimate, and no sign of losing */
    P->win_job_ns += job_ns - P->win_job_ns / 8;
    P->win_serial_ns += cpu_ns * n / ran - P->win_serial_ns / 8;
    if (++P->win_jobs < NNFS_GUARD_MIN_JOBS)
        return;
    if (P->win_job_ns > P->win_serial_ns) {
        P->serial_until = nnfs_now_ns() + P->backoff_ns;
        P->backoff_ns = P->backoff_ns * 2 < NNFS_GUARD_BACKOFF_MAX_NS
            ? P->backoff_ns * 2 : NNFS_GUARD_BACKOFF_MAX_NS;
        P->win_job_ns = P->win_serial_ns = P->win_jobs = 0;
        nnfs_add(&P->backoffs, 1);
    } else if (P->win_jobs >= 4 * NNFS_GUARD_MIN_JOBS) {
        P->backoff_ns = NNFS_GUARD_BACKOFF_NS;     /* winning again: forget past backoffs */
    }
}

/* Run fn(ctx, t) for t in [0, n_tasks) on up to n_threads threads, the caller included;
 * returns when all have run. Tasks must be independent (each owns its outputs). */
static void nnfs_pool_run(nnfs_task_fn fn, void* ctx, Py_ssize_t n_tasks, int n_threads) {
    int64_t first, n, ran, t0, t1, t2, cpu0 = 0;
    uint64_t g;
    nnfs_waiter wait;
    int measure;
    if (n_threads <= 1 || n_tasks <= 1) {
        nnfs_run_serial(fn, ctx, n_tasks);
        return;
    }
    if (!nnfs_trylock(&nnfs_pool.submit)) {   /* another Python thread's job is running */
        nnfs_add(&nnfs_pool.busy_runs, 1);
        nnfs_run_serial(fn, ctx, n_tasks);
        return;
    }
    if (nnfs_pool.serial_until != 0) {
        if (nnfs_now_ns() < nnfs_pool.serial_until && nnfs_load(&nnfs_pool.guard_on)) {
            nnfs_unlock(&nnfs_pool.submit);
            nnfs_add(&nnfs_pool.serial_runs, 1);
            nnfs_run_serial(fn, ctx, n_tasks);
            return;
        }
        nnfs_pool.serial_until = 0;
    }
    nnfs_ensure_workers(n_threads - 1);
    for (first = 0; first < n_tasks; first += n) {
        n = n_tasks - first < NNFS_POOL_MAX_TASKS ? n_tasks - first : NNFS_POOL_MAX_TASKS;
        g = (NNFS_GEN(nnfs_load(&nnfs_pool.word)) + 1) & 0xFFFFFFFFull;
        measure = nnfs_load(&nnfs_pool.guard_on)     /* hashed: not every other job kind */
            && ((uint32_t)(g * 2654435761u) >> 8) % (uint64_t)nnfs_load(&nnfs_pool.guard_sample)
               == 0;
        if (measure)
            cpu0 = nnfs_thread_cpu_ns();
        t0 = nnfs_now_ns();
        nnfs_store(&nnfs_pool.word, (int64_t)(g << 32 | NNFS_POOL_CLOSED));
        nnfs_fence_release();       /* late readers of the fields below fail their CAS */
        NNFS_RELAXED_STORE(nnfs_pool.fn, fn);
        NNFS_RELAXED_STORE(nnfs_pool.ctx, ctx);
        NNFS_RELAXED_STORE(nnfs_pool.first, first);
        NNFS_RELAXED_STORE(nnfs_pool.n_tasks, n);
        NNFS_RELAXED_STORE(nnfs_pool.n_threads, (int64_t)n_threads);
        NNFS_RELAXED_STORE(nnfs_pool.caller_cpu, (int64_t)nnfs_cpu());
        nnfs_store(&nnfs_pool.done, 0);
        nnfs_store(&nnfs_pool.word, (int64_t)(g << 32));
        nnfs_add(&nnfs_pool.jobs, 1);
        if (nnfs_load(&nnfs_pool.sleepers) > 0) {
            nnfs_lock(&nnfs_pool.mutex);
            nnfs_cond_broadcast(&nnfs_pool.work_cond);
            nnfs_unlock(&nnfs_pool.mutex);
        }
        ran = nnfs_claim(g);
        if (measure)
            cpu0 = nnfs_thread_cpu_ns() - cpu0;
        /* wait for the tasks others started: spin, then sleep (frees this core) */
        nnfs_wait_begin(&wait, nnfs_load(&nnfs_pool.spin_ns));
        t1 = wait.t0;
        while (nnfs_load(&nnfs_pool.done) < n) {
            if (!nnfs_wait_step(&wait)) {
                nnfs_add(&nnfs_pool.caller_sleeps, 1);
                nnfs_store(&nnfs_pool.caller_waiting, 1);
                nnfs_lock(&nnfs_pool.mutex);
                while (nnfs_load(&nnfs_pool.done) < n)
                    nnfs_cond_wait(&nnfs_pool.done_cond, &nnfs_pool.mutex);
                nnfs_unlock(&nnfs_pool.mutex);
                nnfs_store(&nnfs_pool.caller_waiting, 0);
                break;
            }
        }
        t2 = nnfs_now_ns();
        nnfs_add(&nnfs_pool.job_ns, t2 - t0);
        nnfs_add(&nnfs_pool.wait_ns, t2 - t1);
        if (measure)
            nnfs_guard_record(t2 - t0, cpu0, ran, n);
    }
    nnfs_unlock(&nnfs_pool.submit);
}

/* Forked child: the parent's workers do not exist here; start afresh (lazily). */
static void nnfs_pool_after_fork_child(void) {
    nnfs_mutex m = NNFS_MUTEX_INIT;
    nnfs_cond c = NNFS_COND_INIT;
    nnfs_pool.submit = m;
    nnfs_pool.mutex = m;
    nnfs_pool.work_cond = c;
    nnfs_pool.done_cond = c;
    nnfs_pool.n_workers = 0;
    nnfs_pool.sleepers = 0;
    nnfs_pool.caller_waiting = 0;
    nnfs_pool.stall_worker = -1;
    nnfs_pool.stalling = 0;
    nnfs_pool.serial_until = 0;
    nnfs_pool.win_job_ns = nnfs_pool.win_serial_ns = nnfs_pool.win_jobs = 0;
    nnfs_pool.word = (int64_t)(((NNFS_GEN(nnfs_pool.word) + 1) & 0xFFFFFFFFull) << 32
                               | NNFS_POOL_CLOSED);
}

/* Once, at import of the module that includes this file. */
static int nnfs_pool_init(void) {
#if defined(_WIN32)
    return 0;
#else
    return pthread_atfork(NULL, NULL, nnfs_pool_after_fork_child);
#endif
}

/* for show_config, the tests and the benchmarks */
static int nnfs_pool_workers(void) { return nnfs_pool.n_workers; }
static int64_t nnfs_pool_jobs(void) { return nnfs_load(&nnfs_pool.jobs); }
static int64_t nnfs_pool_tasks_by_workers(void) { return nnfs_load(&nnfs_pool.tasks_by_workers); }
static int64_t nnfs_pool_busy_runs(void) { return nnfs_load(&nnfs_pool.busy_runs); }
static int64_t nnfs_pool_same_core_skips(void) { return nnfs_load(&nnfs_pool.same_core_skips); }
static int64_t nnfs_pool_job_ns(void) { return nnfs_load(&nnfs_pool.job_ns); }
static int64_t nnfs_pool_wait_ns(void) { return nnfs_load(&nnfs_pool.wait_ns); }
static int64_t nnfs_pool_caller_sleeps(void) { return nnfs_load(&nnfs_pool.caller_sleeps); }
static int64_t nnfs_pool_backoffs(void) { return nnfs_load(&nnfs_pool.backoffs); }
static int64_t nnfs_pool_serial_runs(void) { return nnfs_load(&nnfs_pool.serial_runs); }
static int nnfs_pool_guard_on(void) { return (int)nnfs_load(&nnfs_pool.guard_on); }
/* the guard on or off, and 1 job in `sample` measured (tests: 1) */
static void nnfs_pool_set_guard(int on, int sample) {
    nnfs_store(&nnfs_pool.guard_sample, sample > 0 ? sample : 1);
    nnfs_store(&nnfs_pool.guard_on, on != 0);
}
static int64_t nnfs_pool_spin_ns(void) { return nnfs_load(&nnfs_pool.spin_ns); }
static void nnfs_pool_set_spin_ns(int64_t ns) { nnfs_store(&nnfs_pool.spin_ns, ns); }
static int64_t nnfs_pool_stalling(void) { return nnfs_load(&nnfs_pool.stalling); }
static int64_t nnfs_pool_stalls(void) { return nnfs_load(&nnfs_pool.stalls); }
/* Test hook: worker k (slot k + 1) sleeps ns nanoseconds once, the next time it reaches
 * `where` (NNFS_STALL_*) in a job it joins; k = -1 disarms. */
static void nnfs_pool_stall(int k, int64_t ns, int where) {
    nnfs_store(&nnfs_pool.stall_worker, -1);
    nnfs_store(&nnfs_pool.stall_ns, ns);
    nnfs_store(&nnfs_pool.stall_where, where);
    nnfs_store(&nnfs_pool.stall_worker, k);
}

#endif /* NNFS_POOL_H */
