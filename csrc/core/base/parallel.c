#define _GNU_SOURCE  /* sched_getaffinity, CPU_ISSET */
#include "parallel.h"

#include <ctype.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef _OPENMP
#include <omp.h>
#endif

static int num_threads;     /* 0 until first asked: then OpenMP's default (OMP_NUM_THREADS or the CPUs) */
static atomic_int now = 0;  /* the team a loop gets now: num_threads, or fewer on a busy machine */
static _Thread_local int icv_set;  /* the OpenMP thread count this thread last set here (0: none) */

/* ---- fitting the team to the CPUs that other processes leave free ----
 * Every WINDOW seconds, the thread starting a loop compares how busy the CPUs it may run on were
 * (/proc/stat) with the CPU time of this process: the rest is other processes'. The team is then the
 * CPUs they left free, rounded, between 1 and num_threads. */
#define WINDOW 0.25

static struct {
    pthread_mutex_t lock;
    int state;           /* 0 not started, 1 sampling, -1 off (not Linux, or LIGHTNING_ADAPT_THREADS=0) */
    double wall, ours;   /* at the last sample: seconds (monotonic), this process's CPU seconds */
    double busy;         /* CPU seconds the allowed CPUs were busy, all processes */
    double others;       /* other processes' CPUs, averaged over the last windows */
    int cpus;
} fit = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, 0, 0, 0};

static double seconds(clockid_t clock) {
    struct timespec t;
    clock_gettime(clock, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Busy seconds of the CPUs this thread may run on, summed, and how many they are; -1 where unknown. */
static double busy_seconds(int *cpus) {
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof allowed, &allowed)) return -1;
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return -1;
    double tick = (double)sysconf(_SC_CLK_TCK), busy = 0;
    char line[512];
    *cpus = 0;
    while (fgets(line, sizeof line, f) && !strncmp(line, "cpu", 3)) {
        unsigned cpu;
        unsigned long long user, nice, sys, idle, iowait, irq, softirq, steal;
        if (!isdigit((unsigned char)line[3]))
            continue;  /* the first line, "cpu  ...", sums all CPUs */
        if (sscanf(line, "cpu%u %llu %llu %llu %llu %llu %llu %llu %llu", &cpu, &user, &nice, &sys, &idle, &iowait,
                   &irq, &softirq, &steal) != 9 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &allowed))
            continue;
        busy += (double)(user + nice + sys + irq + softirq + steal) / tick;
        (*cpus)++;
    }
    fclose(f);
    return *cpus > 0 ? busy : -1;
}

int lt_threads_fit(int requested, int cpus, double others) {
    int free = (int)((double)cpus - others + 0.5);
    return free < 1 ? 1 : free < requested ? free : requested;
}

/* Samples when a window has passed (one thread at a time, the others go on) and sets `now`. */
static void refit(void) {
    if (fit.state < 0 || pthread_mutex_trylock(&fit.lock)) return;
    double wall = seconds(CLOCK_MONOTONIC);
    if (fit.state == 0) {
        const char *adapt = getenv("LIGHTNING_ADAPT_THREADS");
        if (adapt && !strcmp(adapt, "0")) fit.state = -1;
    }
    if (fit.state == 0 || (fit.state == 1 && wall - fit.wall >= WINDOW)) {
        int cpus = 0;
        double ours = seconds(CLOCK_PROCESS_CPUTIME_ID), busy = busy_seconds(&cpus);
        if (busy < 0) {
            fit.state = -1;
        } else {
            if (fit.state == 1 && cpus == fit.cpus) {
                double others = (busy - fit.busy - (ours - fit.ours)) / (wall - fit.wall);
                fit.others = 0.5 * fit.others + 0.5 * (others > 0 ? others : 0);
                atomic_store(&now, lt_threads_fit(num_threads, cpus, fit.others));
            }
            fit.state = 1;
            fit.wall = wall;
            fit.ours = ours;
            fit.busy = busy;
            fit.cpus = cpus;
        }
    }
    pthread_mutex_unlock(&fit.lock);
}

int lt_get_num_threads(void) {
#ifdef _OPENMP
    if (num_threads == 0) lt_set_num_threads(omp_get_max_threads());
#else
    if (num_threads == 0) lt_set_num_threads(1);
#endif
    return num_threads;
}

void lt_set_num_threads(int n) {
    if (n < 1) n = 1;
#ifdef _OPENMP
    omp_set_num_threads(n);
    icv_set = n;
#else
    n = 1;
#endif
    num_threads = n;
    atomic_store(&now, n);
}

int lt_threads_now(void) {
    int n = lt_get_num_threads();
#ifdef _OPENMP
    if (n > 1 && !omp_in_parallel()) refit();
    n = atomic_load(&now);
    /* oneDNN makes its primitives for this thread's OpenMP count: follow the team, unless someone set
     * another count since (dnnl/'s deterministic paths do, for a moment) */
    if (icv_set && omp_get_max_threads() == icv_set && icv_set != n) {
        omp_set_num_threads(n);
        icv_set = n;
    }
#endif
    return n;
}

int lt_threads_for(int64_t n, int64_t grain) {
#ifdef _OPENMP
    if (n < grain || omp_in_parallel()) return 1;
    return lt_threads_now();
#else
    return 1;
#endif
}

int lt_thread_num(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}
