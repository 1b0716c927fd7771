/* The CPU engine seam: how a board creates and drives its virtual CPUs without knowing which
 * engine runs them (the RV64 interpreter today; a JIT or KVM later).
 *
 * An engine is one `const struct cpu_engine` with designated initialisers in its own folder,
 * registered with CPU_ENGINE_REGISTER(); nothing central lists engines, so adding one adds a
 * file and edits no switch. A board looks an engine up by name (cpu_engine_find()), creates
 * one struct vcpu per hart with vcpu_create(), and from then on calls only the vcpu_*
 * wrappers below, which are where tracing or fault injection would hook in.
 *
 * Engines of one architecture run the same guest ISA and write the same state section format
 * (the architectural state, never caches), so a snapshot taken with one loads into another.
 *
 * Threads: each vcpu runs guest code on one host thread, inside vcpu_run(). Functions marked
 * "stopped only" may be called only while no thread is inside vcpu_run() for that vcpu (and
 * with a happens-before edge to the thread that runs it next: thread start, a mutex). */
#ifndef TESSERA_CPU_ENGINE_H
#define TESSERA_CPU_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

struct bus;
struct code_watch;
struct dirty_log;
struct sbuf;
struct scur;
struct vcpu;

/* A host-backed physical range the vcpu may execute from and access directly (RAM, ROM). */
struct vcpu_mem_region {
    uint64_t base;
    uint64_t size; /* multiple of 4 KiB */
    uint8_t *host;
    bool readonly; /* stores fault with a store access fault */
    /* NULL: never logged (ROM). Otherwise, while the log is on, every page the vcpu writes
     * is marked in it (src/base/dirty.h); see vcpu_dirty_rearm(). */
    struct dirty_log *dirty;
    /* NULL: none. The pages vcpus decoded code from, and who wrote them since
     * (src/base/codewatch.h), shared by every vcpu and device of the machine. */
    struct code_watch *code;
};

#define VCPU_MAX_MEM_REGIONS 4

struct vcpu_config {
    unsigned id;           /* the hart id the guest reads (mhartid) */
    const struct bus *bus; /* every physical access that is not a mem region */
    struct vcpu_mem_region mem[VCPU_MAX_MEM_REGIONS];
    unsigned mem_count;
};

/* Interrupt inputs of a RISC-V hart, numbered as the mip bits (RISC-V privileged §3.1.9). */
enum vcpu_irq {
    VCPU_IRQ_SSI = 1,
    VCPU_IRQ_MSI = 3,
    VCPU_IRQ_STI = 5,
    VCPU_IRQ_MTI = 7,
    VCPU_IRQ_SEI = 9,
    VCPU_IRQ_MEI = 11,
};

/* An engine. `impl` below is the engine's own per-vcpu object. */
struct cpu_engine {
    const char *name;    /* as a user selects it, e.g. "interp" */
    const char *summary; /* one line for --help and logs */
    /* The version of the state section save() writes; a new field is a new version. */
    uint32_t state_version;

    /* Creates a vcpu in its reset state with pc = 0; the config is copied. 0 or -ENOMEM. */
    int (*create)(const struct vcpu_config *cfg, void **impl);
    void (*destroy)(void *impl);
    /* The source of the time CSR (any thread may be asked). Set-up only, before run(). */
    void (*set_time_source)(void *impl, uint64_t (*time)(void *opaque), void *opaque);
    /* The comparator behind the supervisor timer (RISC-V Sstc's stimecmp): the vcpu calls
     * arm(opaque, id, cmp) when its comparator changes (on its own thread, or its stopped
     * caller's), and arm must set the vcpu's VCPU_IRQ_STI line to (time >= cmp) at once and
     * whenever that changes after. NULL op: the engine has no such timer. Set-up only. */
    void (*set_stimer)(void *impl, void (*arm)(void *opaque, unsigned id, uint64_t cmp),
                       void *opaque);
    /* Power-on state, then pc = reset_pc. Stopped only. */
    void (*reset)(void *impl, uint64_t reset_pc);
    /* Runs guest code on the calling thread until a stop is requested; returns 0. */
    int (*run)(void *impl);
    /* Asks run() to return soon (at its next block boundary, or out of WFI). Any thread;
     * never blocks. The request stays until clear_stop(). */
    void (*request_stop)(void *impl);
    void (*clear_stop)(void *impl);
    /* Raises or lowers interrupt input `irq` (enum vcpu_irq). Any thread; wakes a vcpu that
     * waits for an interrupt. */
    void (*set_irq)(void *impl, unsigned irq, bool level);
    /* Instructions retired since creation. Any thread; a running vcpu's count may lag. */
    uint64_t (*instret)(const void *impl);
    /* After the board harvested its RAM's dirty log: forget every cached writable mapping,
     * so that the next store to any page marks it again. Stopped only. */
    void (*dirty_rearm)(void *impl);
    /* Writes the architectural state into out (allocation failure left in out->oom).
     * Stopped only. */
    void (*save)(const void *impl, struct sbuf *out);
    /* Loads what save() wrote with section version `version`, checking every field against
     * what this vcpu can hold and that the whole payload is consumed. 0, or -1 with the
     * reason in in->err and the vcpu in its reset state with pc 0. Stopped only. */
    int (*load)(void *impl, struct scur *in, uint32_t version);
};

/* The engine a board uses when none is named: the JIT where it exists (x86-64 Linux hosts,
 * the condition of RV_JIT_HOST in cpu/rv64/jit/jit.h, which registers "jit" only there),
 * the interpreter elsewhere. The two run the same guests the same way and save the same
 * state, so a VM saved or migrated under one resumes under the other. */
#if defined(__x86_64__) && defined(__linux__)
#define CPU_ENGINE_DEFAULT "jit"
#else
#define CPU_ENGINE_DEFAULT "interp"
#endif

/* Registry node; one per engine, made by CPU_ENGINE_REGISTER(). */
struct cpu_engine_entry {
    const struct cpu_engine *engine;
    struct cpu_engine_entry *next;
};

/* From constructors only (before main()); the registry is read-only afterwards. */
void cpu_engine_register(struct cpu_engine_entry *entry);

#define CPU_ENGINE_REGISTER(var)                                             \
    static struct cpu_engine_entry cpu_engine_entry_##var = {&(var), 0};     \
    __attribute__((constructor)) static void cpu_engine_register_##var(void) \
    {                                                                        \
        cpu_engine_register(&cpu_engine_entry_##var);                        \
    }

/* The engine called `name`, or NULL. */
const struct cpu_engine *cpu_engine_find(const char *name);

/* Writes the registered engines' names, comma-separated, into buf (always terminated). For
 * error messages that list the choices. */
void cpu_engine_list(char *buf, unsigned len);

/* --- one vcpu, through its engine (contracts as the ops above) --- */

int vcpu_create(const struct cpu_engine *engine, const struct vcpu_config *cfg, struct vcpu **out);
void vcpu_destroy(struct vcpu *v); /* NULL is ignored */
const struct cpu_engine *vcpu_engine(const struct vcpu *v);
void vcpu_set_time_source(struct vcpu *v, uint64_t (*time)(void *opaque), void *opaque);
/* Does nothing for an engine without a supervisor timer. */
void vcpu_set_stimer(struct vcpu *v, void (*arm)(void *opaque, unsigned id, uint64_t cmp),
                     void *opaque);
void vcpu_reset(struct vcpu *v, uint64_t reset_pc);
int vcpu_run(struct vcpu *v);
void vcpu_request_stop(struct vcpu *v);
void vcpu_clear_stop(struct vcpu *v);
/* Usable as an irq_set_fn (src/hw/irq.h) with the vcpu as opaque. */
void vcpu_set_irq(void *vcpu, unsigned irq, bool level);
uint64_t vcpu_instret(const struct vcpu *v);
void vcpu_dirty_rearm(struct vcpu *v);
uint32_t vcpu_state_version(const struct vcpu *v);
void vcpu_save(const struct vcpu *v, struct sbuf *out);
int vcpu_load(struct vcpu *v, struct scur *in, uint32_t version);

#endif
