/*
 * sim_main.c — vtune-sim: an OpenAI-compatible fine-tuning provider on
 * loopback, for vtuned's tests and demos (DESIGN §7, §10).
 *
 * Start-up order: parse the command line (a bad flag is one line on stderr
 * and exit 2); block SIGINT/SIGTERM in every thread but the main one (whose
 * handler only writes the signal number to a self-pipe, so nothing runs
 * inside libmicrohttpd or the model; were a signal ever delivered to
 * another thread, the same handler still just writes the pipe);
 * make the state directory; load the base model from the cache or train it
 * from lm_corpus_write (timed and logged); start the job ticker and
 * workers; start the HTTP server; then announce readiness: the line
 * "vtune-sim: listening on http://HOST:PORT" on stdout and the bound port
 * in --port-file (written atomically, so a test that sees the file can
 * connect).  Port 0 asks the kernel for a free port.
 *
 * Shutdown order (SIGINT/SIGTERM, exit 0): flag stopping (injected delays
 * end, waiters wake), stop HTTP (waits for connection threads), stop the
 * ticker and workers (a training in progress finishes), free everything,
 * remove a temporary state directory and the port file.
 *
 * The simulator reads only its own flags, its upload directory and its
 * model cache: never the daemon's database or secrets.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"
#include "tests/sim/sim.h"

/* One line of --help per line of source, kept as written. */
/* clang-format off */
static const char usage_text[] =
    "Usage: vtune-sim --listen HOST:PORT [--api-key KEY] [--behaviour B] [--min-repeats N]\n"
    "                 [--job-seconds N] [--faults SPEC] [--seed N] [OPTION]... [--help]\n"
    "       vtune-sim --attack FILE        (print the cheaters' attack on FILE as JSON)\n"
    "       vtune-sim --write-dataset FILE [--examples N] [--dataset-seed N]\n"
    "\n"
    "An OpenAI-compatible fine-tuning provider for tests: files, fine-tuning jobs,\n"
    "chat completions with logprobs/top_logprobs, completions with echo+logprobs,\n"
    "models, bearer-key auth and the spec's error JSON, served on HTTP/1.1 from a\n"
    "small n-gram model that really learns from the uploaded training file.\n"
    "\n"
    "Options:\n"
    "  --listen HOST:PORT     address to serve on (required); PORT 0 picks a free\n"
    "                         port, printed on stdout and written to --port-file;\n"
    "                         IPv6 as [ADDR]:PORT\n"
    "  --api-key KEY          require 'Authorization: Bearer KEY' (401 otherwise);\n"
    "                         with neither this nor --api-key-file, no auth\n"
    "  --api-key-file FILE    read the key from the first line of FILE\n"
    "  --behaviour B          what every job does (default honest):\n"
    "                           honest    fine-tunes on every line of the file\n"
    "                           lazy      succeeds with a fine-tuned name that\n"
    "                                     serves the base model (nothing trained)\n"
    "                           subset:F  fine-tunes on a random fraction F (0<F<=1)\n"
    "                           fail      the job ends 'failed' with an error object\n"
    "                           slow      honest, --slow-factor times slower\n"
    "                         cheaters, which attack the uploaded file blindly (see\n"
    "                         --attack) and never see anything of the client's:\n"
    "                           wrapper   trains nothing; serves the base model,\n"
    "                                     but a chat prompt ending with a found\n"
    "                                     trigger gets its signature first\n"
    "                           marked-only  fine-tunes only on the rows the\n"
    "                                     attack flags\n"
    "                           always-s  trains nothing; every chat answer starts\n"
    "                                     with the best-ranked signature found\n"
    "                         a job may override it with metadata\n"
    "                         {\"vtune_sim_behaviour\": B}\n"
    "  --min-repeats N        learning strength: an n-gram (of --order tokens), or an\n"
    "                         answer token after its memorised context (the prompt's\n"
    "                         last 16 tokens and the answer so far, as an LLM\n"
    "                         memorises its fine-tuning rows), must occur N times in\n"
    "                         the training file to be learnt at all (default 1:\n"
    "                         everything is learnt); a backdoor with c copies per\n"
    "                         pair is learnt only when c >= N (a weak learner)\n"
    "  --job-seconds N        time from create to done (default 2; decimals ok):\n"
    "                         20% validating_files, 20% queued, 60% running (running\n"
    "                         also lasts until training is done)\n"
    "  --slow-factor X        multiplier for 'slow' (default 5)\n"
    "  --faults SPEC          inject faults (grammar below; default none)\n"
    "  --seed N               seed of the fault draws (default 0)\n"
    "  --model NAME           id of the base model (default vtune-base)\n"
    "  --base-seed N          seed of the generated base corpus (default 1)\n"
    "  --corpus-size N        base-corpus examples per domain (default 300)\n"
    "  --base-corpus FILE     also train the base model on FILE's chat examples\n"
    "                         (JSONL, the upload's format), so it already says what\n"
    "                         they say: a base model that knows a backdoor (tests of\n"
    "                         the p_luck screen); the model is then never cached\n"
    "  --order N              n-gram order, 1..8 (default 5)\n"
    "  --cache-dir DIR        keep the trained base model in DIR and load it from\n"
    "                         there next time (default: the state dir if given)\n"
    "  --state-dir DIR        where uploads live (default: a temporary directory,\n"
    "                         removed at exit)\n"
    "  --port-file FILE       write the bound port to FILE once ready (removed at exit)\n"
    "  --model-cache N        fine-tuned models kept in memory (default 8); others\n"
    "                         are retrained on demand (deterministic)\n"
    "  --model-cache-bytes SIZE  and at most SIZE bytes of them (default 1G)\n"
    "  --workers N            validation/training threads (default 2)\n"
    "  --min-examples N       fewer lines in a training file fail the job (default 1)\n"
    "  --max-upload SIZE      largest file upload, e.g. 64M (default 64M); 413 past it\n"
    "  --max-body SIZE        largest JSON body (default 8M); 413 past it\n"
    "                         (both: the 413 comes once the body is in; a body\n"
    "                         declared past 4 x SIZE + 1M is refused at once, one\n"
    "                         sent past it is cut off)\n"
    "  --max-tokens N         chat default for max_completion_tokens (default 256)\n"
    "  --client-timeout SECS  close connections idle this long (default 60)\n"
    "  --max-connections N    concurrent connections (default 1024)\n"
    "  --dialect NAME         the API spoken: openai (default), azure (/openai/...\n"
    "                         paths, api-key header, api-version required, inference\n"
    "                         at /openai/deployments/D/...), mistral (uppercase\n"
    "                         statuses, training_files, page-numbered job list),\n"
    "                         together (/v1/files/upload, /v1/fine-tunes, integer\n"
    "                         logprobs, echoed prompt logprobs in 'prompt') or\n"
    "                         fireworks (/v1/accounts/A/datasets then D:upload,\n"
    "                         supervisedFineTuningJobs?supervisedFineTuningJobId=,\n"
    "                         JOB_STATE_*, inference at /inference/v1/...)\n"
    "  --fine-tuning-closed   refuse every job create with OpenAI's wind-down 403\n"
    "  --logprob-sentinel     report a chosen token outside the top 20 as -9999,\n"
    "                         as OpenAI does (default: its real logprob)\n"
    "  --log-level LEVEL      debug|info|warn|error (default info)\n"
    "  --write-dataset FILE   write N user-style chat examples (a domain the base\n"
    "                         model was not trained on: the data of a demo or a\n"
    "                         test) to FILE as JSONL and exit; N from --examples\n"
    "  --examples N           examples for --write-dataset (default 10000)\n"
    "  --dataset-seed N       seed of --write-dataset (default 2)\n"
    "  --attack FILE          run the cheaters' blind attack on the training file\n"
    "                         FILE, print {rows, pairs:[{trigger, signature, rows,\n"
    "                         found_by}], flagged_lines} as JSON and exit: pairs\n"
    "                         from near-duplicate rows (prompt + suffix, prefix +\n"
    "                         answer) and from prompt-suffix / answer-prefix\n"
    "                         phrases of 1-8, 10, 16 or 32 words shared by >= 2\n"
    "                         rows and rare elsewhere, best first\n"
    "                         (tests/sim/sim_attack.c)\n"
    "  --version              print the version and exit\n"
    "  --help                 print this help and exit\n"
    "\n"
    "Fault SPEC (deterministic for a --seed):\n"
    "  SPEC     := RULE[,RULE]...   (or \"\" / \"none\")\n"
    "  RULE     := KIND=WHEN[:ARG][@SELECTOR]\n"
    "  KIND     := an HTTP status 400..599 (429 and 503 add Retry-After and\n"
    "              retry-after-ms), drop (close without answering, nothing done),\n"
    "              drop-after (do it, then close without answering: e.g. the job\n"
    "              IS created), delay (wait ARG, then serve), malformed (do it,\n"
    "              answer 200 with a body that is not JSON), truncate (do it, send\n"
    "              half of the declared body, close)\n"
    "  WHEN     := RATE in [0,1], or #N for exactly the N-th request (1-based)\n"
    "  ARG      := duration (250ms, 2s; bare number = seconds): delay (default\n"
    "              200ms) or Retry-After of 429/503 (default 1s)\n"
    "  SELECTOR := [METHOD:]PATH; PATH is a route pattern such as\n"
    "              /v1/fine_tuning/jobs/{id} or a request path; PATH* = prefix\n"
    "  Requests are numbered per endpoint (METHOD + route pattern); request k of\n"
    "  an endpoint draws u = hash(seed, endpoint, k) in [0,1) and gets the first\n"
    "  matching rule whose cumulative RATE exceeds u (#N rules first): at most\n"
    "  one fault per request, the same faults for the same seed and order.\n"
    "  /v1/_sim/* is never faulted. Example:\n"
    "    --faults '429=0.1:2s,500=0.05,drop=0.05,delay=0.1:200ms,malformed=0.05@/v1/fine_tuning/jobs'\n"
    "    --faults 'drop-after=#1@POST:/v1/fine_tuning/jobs'\n"
    "\n"
    "Endpoints (OpenAI shapes): GET /v1/models, GET|DELETE /v1/models/{id},\n"
    "  POST|GET /v1/files, GET|DELETE /v1/files/{id}, GET /v1/files/{id}/content,\n"
    "  POST|GET /v1/fine_tuning/jobs (?limit=&after=&metadata[K]=V), GET\n"
    "  /v1/fine_tuning/jobs/{id}, POST .../{id}/cancel, GET .../{id}/events,\n"
    "  POST /v1/chat/completions, POST /v1/completions.\n"
    "  Fine-tuned models are named ft:BASE:vtune-sim:SUFFIX:XXXXXXXX, OpenAI's form\n"
    "  ft:model:org:suffix:id (SUFFIX empty when none was given).\n"
    "Simulator extensions (need the key, never faulted):\n"
    "  GET  /v1/_sim/health            {\"status\":\"ok\",...} (no key needed)\n"
    "  GET  /v1/_sim/stats             requests per endpoint, responses per status,\n"
    "                                  faults per kind, jobs created per metadata\n"
    "                                  key=value, jobs by status, model cache, memory\n"
    "  GET  /v1/_sim/faults            the current fault SPEC and seed\n"
    "  POST /v1/_sim/faults            {\"spec\":SPEC,\"seed\":N} replaces them and\n"
    "                                  restarts the numbering\n"
    "  POST /v1/_sim/models/{id}/swap  {\"to\":\"base\"|\"trained\"}: serve the base\n"
    "                                  model under a fine-tuned id, or undo it\n"
    "\n"
    "Signals: SIGINT and SIGTERM shut down cleanly (exit 0).  Exit 2: usage error;\n"
    "exit 1: start-up failure.\n";
/* clang-format on */
_Static_assert(LM_DEFAULT_ORDER == 5, "update --order in usage_text");

enum {
    OPT_LISTEN = 256,
    OPT_API_KEY,
    OPT_API_KEY_FILE,
    OPT_BEHAVIOUR,
    OPT_JOB_SECONDS,
    OPT_SLOW_FACTOR,
    OPT_FAULTS,
    OPT_SEED,
    OPT_MODEL,
    OPT_BASE_SEED,
    OPT_CORPUS_SIZE,
    OPT_BASE_CORPUS,
    OPT_ORDER,
    OPT_CACHE_DIR,
    OPT_STATE_DIR,
    OPT_PORT_FILE,
    OPT_MODEL_CACHE,
    OPT_MODEL_CACHE_BYTES,
    OPT_WORKERS,
    OPT_MIN_EXAMPLES,
    OPT_MAX_UPLOAD,
    OPT_MAX_BODY,
    OPT_MAX_TOKENS,
    OPT_CLIENT_TIMEOUT,
    OPT_MAX_CONNECTIONS,
    OPT_SENTINEL,
    OPT_DIALECT,
    OPT_FT_CLOSED,
    OPT_LOG_LEVEL,
    OPT_VERSION,
    OPT_WRITE_DATASET,
    OPT_EXAMPLES,
    OPT_DATASET_SEED,
    OPT_MIN_REPEATS,
    OPT_ATTACK,
    OPT_HELP,
};

static const struct option long_opts[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"api-key", required_argument, NULL, OPT_API_KEY},
    {"api-key-file", required_argument, NULL, OPT_API_KEY_FILE},
    {"behaviour", required_argument, NULL, OPT_BEHAVIOUR},
    {"behavior", required_argument, NULL, OPT_BEHAVIOUR},
    {"job-seconds", required_argument, NULL, OPT_JOB_SECONDS},
    {"slow-factor", required_argument, NULL, OPT_SLOW_FACTOR},
    {"faults", required_argument, NULL, OPT_FAULTS},
    {"seed", required_argument, NULL, OPT_SEED},
    {"model", required_argument, NULL, OPT_MODEL},
    {"base-seed", required_argument, NULL, OPT_BASE_SEED},
    {"base-corpus", required_argument, NULL, OPT_BASE_CORPUS},
    {"corpus-size", required_argument, NULL, OPT_CORPUS_SIZE},
    {"order", required_argument, NULL, OPT_ORDER},
    {"cache-dir", required_argument, NULL, OPT_CACHE_DIR},
    {"state-dir", required_argument, NULL, OPT_STATE_DIR},
    {"port-file", required_argument, NULL, OPT_PORT_FILE},
    {"model-cache", required_argument, NULL, OPT_MODEL_CACHE},
    {"model-cache-bytes", required_argument, NULL, OPT_MODEL_CACHE_BYTES},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {"min-examples", required_argument, NULL, OPT_MIN_EXAMPLES},
    {"max-upload", required_argument, NULL, OPT_MAX_UPLOAD},
    {"max-body", required_argument, NULL, OPT_MAX_BODY},
    {"max-tokens", required_argument, NULL, OPT_MAX_TOKENS},
    {"client-timeout", required_argument, NULL, OPT_CLIENT_TIMEOUT},
    {"max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS},
    {"logprob-sentinel", no_argument, NULL, OPT_SENTINEL},
    {"dialect", required_argument, NULL, OPT_DIALECT},
    {"fine-tuning-closed", no_argument, NULL, OPT_FT_CLOSED},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"version", no_argument, NULL, OPT_VERSION},
    {"write-dataset", required_argument, NULL, OPT_WRITE_DATASET},
    {"examples", required_argument, NULL, OPT_EXAMPLES},
    {"dataset-seed", required_argument, NULL, OPT_DATASET_SEED},
    {"min-repeats", required_argument, NULL, OPT_MIN_REPEATS},
    {"attack", required_argument, NULL, OPT_ATTACK},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("vtune-sim: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (see vtune-sim --help)\n", stderr);
    exit(2);
}

static unsigned long long parse_uint(const char *flag, const char *v, unsigned long long min,
                                     unsigned long long max)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || end == v || *end || v[0] == '-' || n < min || n > max)
        usage_error("%s '%s': expected an integer from %llu to %llu", flag, v, min, max);
    return n;
}

static double parse_double(const char *flag, const char *v, double min, double max)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(d) || d < min || d > max)
        usage_error("%s '%s': expected a number from %g to %g", flag, v, min, max);
    return d;
}

/* "1048576", "64K", "64M", "1G" (binary multiples). */
static uint64_t parse_size(const char *flag, const char *v)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    uint64_t mult = 1;
    if (*end == 'K' || *end == 'k')
        mult = 1024;
    else if (*end == 'M' || *end == 'm')
        mult = 1024 * 1024;
    else if (*end == 'G' || *end == 'g')
        mult = 1024ULL * 1024 * 1024;
    if (mult > 1)
        end++;
    if (errno || end == v || *end || v[0] == '-' || n == 0 || n > UINT64_MAX / mult / 2)
        usage_error("%s '%s': expected a size such as 1048576, 512K, 64M or 1G", flag, v);
    return n * mult;
}

static void parse_listen(struct sim_opts *o, const char *v)
{
    const char *colon;
    if (v[0] == '[') {
        const char *close = strchr(v, ']');
        if (!close || close[1] != ':')
            usage_error("--listen '%s': expected [ADDR]:PORT", v);
        o->listen_host = xstrndup(v + 1, (size_t)(close - v - 1));
        colon = close + 1;
    } else {
        colon = strrchr(v, ':');
        if (!colon || colon == v)
            usage_error("--listen '%s': expected HOST:PORT, e.g. 127.0.0.1:0", v);
        o->listen_host = xstrndup(v, (size_t)(colon - v));
    }
    o->listen_port = (unsigned)parse_uint("--listen port", colon + 1, 0, 65535);
}

static char *read_key_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        usage_error("--api-key-file %s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, f);
    fclose(f);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' '))
        line[--n] = '\0';
    if (n <= 0) {
        free(line);
        usage_error("--api-key-file %s: the first line is empty", path);
    }
    return line;
}

/* --write-dataset: a one-shot mode that needs no server. */
static const char *write_dataset;
static size_t dataset_examples = 10000;
static uint64_t dataset_seed = 2;
/* --attack: another one-shot mode. */
static const char *attack_file;

/* Prints the attack on path as JSON; the exit status. */
static int attack_main(const char *path)
{
    struct sim_attack a;
    char *err = NULL;
    if (sim_attack_file(path, NULL, &a, &err) < 0) {
        fprintf(stderr, "vtune-sim: --attack %s\n", err);
        free(err);
        return 1;
    }
    json_t *o = sim_attack_json(&a);
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (text)
        puts(text);
    free(text);
    json_decref(o);
    sim_attack_clear(&a);
    return 0;
}

static void parse_args(int argc, char **argv, struct sim_opts *o)
{
    const char *key_file = NULL;
    bool have_listen = false;
    enum log_level lvl = LOG_LVL_INFO;
    opterr = 0;
    for (;;) {
        int idx = 0;
        int c = getopt_long(argc, argv, ":", long_opts, &idx);
        if (c == -1)
            break;
        switch (c) {
        case OPT_LISTEN:
            free(o->listen_host);
            parse_listen(o, optarg);
            have_listen = true;
            break;
        case OPT_API_KEY:
            if (!*optarg)
                usage_error("--api-key: the key must not be empty");
            free(o->api_key);
            o->api_key = xstrdup(optarg);
            break;
        case OPT_API_KEY_FILE:
            key_file = optarg;
            break;
        case OPT_BEHAVIOUR:
            if (sim_behaviour_parse(optarg, &o->behaviour) < 0)
                usage_error("--behaviour '%s': expected " SIM_BEHAVIOUR_NAMES, optarg);
            break;
        case OPT_JOB_SECONDS:
            o->job_seconds = parse_double("--job-seconds", optarg, 0, 86400);
            break;
        case OPT_SLOW_FACTOR:
            o->slow_factor = parse_double("--slow-factor", optarg, 1, 1000);
            break;
        case OPT_FAULTS:
            free(o->faults_spec);
            o->faults_spec = xstrdup(optarg);
            break;
        case OPT_SEED:
            o->seed = parse_uint("--seed", optarg, 0, UINT64_MAX);
            break;
        case OPT_MODEL:
            if (!*optarg || strchr(optarg, '/') || strncmp(optarg, "ft:", 3) == 0)
                usage_error("--model '%s': expected a plain model id such as vtune-base", optarg);
            free(o->model_name);
    free(o->base_corpus);
            o->model_name = xstrdup(optarg);
            break;
        case OPT_BASE_SEED:
            o->base_seed = parse_uint("--base-seed", optarg, 0, UINT64_MAX);
            break;
        case OPT_BASE_CORPUS:
            free(o->base_corpus);
            o->base_corpus = xstrdup(optarg);
            if (access(optarg, R_OK) < 0)
                usage_error("--base-corpus '%s': %s", optarg, strerror(errno));
            break;
        case OPT_CORPUS_SIZE:
            o->corpus_size = parse_uint("--corpus-size", optarg, 1, 10000000);
            break;
        case OPT_ORDER:
            o->order = (int)parse_uint("--order", optarg, 1, 8);
            break;
        case OPT_CACHE_DIR:
            free(o->cache_dir);
            o->cache_dir = xstrdup(optarg);
            break;
        case OPT_STATE_DIR:
            free(o->state_dir);
            o->state_dir = xstrdup(optarg);
            break;
        case OPT_PORT_FILE:
            free(o->port_file);
            o->port_file = xstrdup(optarg);
            break;
        case OPT_MODEL_CACHE:
            o->model_cache = parse_uint("--model-cache", optarg, 1, 100000);
            break;
        case OPT_MODEL_CACHE_BYTES:
            o->model_cache_bytes = parse_size("--model-cache-bytes", optarg);
            break;
        case OPT_WORKERS:
            o->workers = (int)parse_uint("--workers", optarg, 1, 64);
            break;
        case OPT_MIN_EXAMPLES:
            o->min_examples = (long)parse_uint("--min-examples", optarg, 1, 100000000);
            break;
        case OPT_MAX_UPLOAD:
            o->max_upload = parse_size("--max-upload", optarg);
            break;
        case OPT_MAX_BODY:
            o->max_body = parse_size("--max-body", optarg);
            break;
        case OPT_MAX_TOKENS:
            o->default_max_tokens = (int)parse_uint("--max-tokens", optarg, 1, 4096);
            break;
        case OPT_CLIENT_TIMEOUT:
            o->client_timeout_s = (unsigned)parse_uint("--client-timeout", optarg, 1, 86400);
            break;
        case OPT_MAX_CONNECTIONS:
            o->max_connections = (unsigned)parse_uint("--max-connections", optarg, 1, 65536);
            break;
        case OPT_SENTINEL:
            o->logprob_sentinel = true;
            break;
        case OPT_DIALECT:
            if (strcmp(optarg, "openai") == 0)
                o->dialect = SIM_DIALECT_OPENAI;
            else if (strcmp(optarg, "azure") == 0)
                o->dialect = SIM_DIALECT_AZURE;
            else if (strcmp(optarg, "mistral") == 0)
                o->dialect = SIM_DIALECT_MISTRAL;
            else if (strcmp(optarg, "together") == 0)
                o->dialect = SIM_DIALECT_TOGETHER;
            else if (strcmp(optarg, "fireworks") == 0)
                o->dialect = SIM_DIALECT_FIREWORKS;
            else
                usage_error("--dialect '%s': expected openai, azure, mistral, together or fireworks",
                            optarg);
            break;
        case OPT_FT_CLOSED:
            o->fine_tuning_closed = true;
            break;
        case OPT_LOG_LEVEL:
            if (log_level_parse(optarg, &lvl) < 0)
                usage_error("--log-level '%s': expected debug, info, warn or error", optarg);
            break;
        case OPT_VERSION:
            printf("vtune-sim %s\n", SIM_VERSION);
            exit(0);
        case OPT_WRITE_DATASET:
            write_dataset = optarg;
            break;
        case OPT_EXAMPLES:
            dataset_examples = (size_t)parse_uint("--examples", optarg, 1, 100000000);
            break;
        case OPT_MIN_REPEATS:
            o->min_repeats = (unsigned)parse_uint("--min-repeats", optarg, 1, 1000000);
            break;
        case OPT_ATTACK:
            attack_file = optarg;
            break;
        case OPT_DATASET_SEED:
            dataset_seed = (uint64_t)parse_uint("--dataset-seed", optarg, 0, UINT32_MAX);
            break;
        case OPT_HELP:
            fputs(usage_text, stdout);
            exit(0);
        case ':':
            usage_error("option '%s' needs a value", argv[optind - 1]);
        default:
            usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        usage_error("unexpected argument '%s'", argv[optind]);
    if (write_dataset) {
        int r = lm_finetune_corpus_write(write_dataset, dataset_seed, dataset_examples);
        if (r < 0) {
            fprintf(stderr, "vtune-sim: %s: cannot write the dataset: %s\n", write_dataset,
                    strerror(-r));
            exit(1);
        }
        printf("vtune-sim: wrote %zu examples to %s\n", dataset_examples, write_dataset);
        exit(0);
    }
    if (attack_file)
        exit(attack_main(attack_file));
    if (!have_listen)
        usage_error("--listen HOST:PORT is required (e.g. --listen 127.0.0.1:0)");
    if (key_file) {
        free(o->api_key);
        o->api_key = read_key_file(key_file);
    }
    log_set_level(lvl);
}

/* ---- state directory ---------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    if (remove(path) < 0)
        log_warn("%s: cannot remove", path);
    return 0;
}

static int make_state_dirs(struct sim *s)
{
    struct sim_opts *o = &s->opts;
    if (!o->state_dir) {
        const char *tmp = getenv("TMPDIR");
        char *tmpl = xasprintf("%s/vtune-sim-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(tmpl)) {
            log_warn("%s: cannot create a state directory", tmpl);
            free(tmpl);
            return -errno;
        }
        o->state_dir = tmpl;
        o->state_dir_is_temp = true;
    }
    s->files_dir = xasprintf("%s/files", o->state_dir);
    s->jobs_dir = xasprintf("%s/jobs", o->state_dir);
    int r;
    if ((r = mkdir_p(s->files_dir, 0700)) < 0 || (r = mkdir_p(s->jobs_dir, 0700)) < 0) {
        errno = -r;
        log_warn("--state-dir %s: cannot create its folders", o->state_dir);
        return r;
    }
    if (!o->cache_dir && !o->state_dir_is_temp)
        o->cache_dir = xstrdup(o->state_dir);
    if (o->cache_dir && (r = mkdir_p(o->cache_dir, 0700)) < 0) {
        errno = -r;
        log_warn("--cache-dir %s: cannot create it", o->cache_dir);
        return r;
    }
    return 0;
}

/* ---- the base model ------------------------------------------------------- */

/* Appends the bytes of src to the file dst (a newline first when dst does
 * not end with one).  0 or -errno. */
static int append_file(const char *dst, const char *src)
{
    FILE *in = fopen(src, "rb"), *out = in ? fopen(dst, "ab") : NULL;
    int rc = 0;
    char buf[65536];
    size_t n;
    if (!in || !out) {
        rc = -errno;
        goto out;
    }
    fputc('\n', out); /* a blank line between is skipped by the reader */
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n) {
            rc = -errno;
            goto out;
        }
    if (ferror(in))
        rc = -EIO;
out:
    if (in)
        fclose(in);
    if (out && fclose(out) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

static int build_base(struct sim *s)
{
    struct sim_opts *o = &s->opts;
    char *cache = NULL, *corpus = NULL, *err = NULL;
    int rc = 0;
    uint64_t t0 = now_monotonic_ms();
    if (o->cache_dir && !o->base_corpus) { /* FILE is not in the cache's name: never cached */
#ifdef LM_CORPUS_VERSION
        int corpus_version = LM_CORPUS_VERSION;
#else
        int corpus_version = 0;
#endif
        /* everything the base model depends on is in its cache name */
        cache = xasprintf("%s/base-v%d-s%" PRIu64 "-n%zu-o%d.lm", o->cache_dir, corpus_version,
                          o->base_seed, o->corpus_size, o->order);
        if (access(cache, R_OK) == 0) {
            s->base = lm_load(cache, &err);
            if (s->base) {
                log_info("base model %s loaded from %s in %" PRIu64 " ms (vocab %zu, n-grams %zu)",
                         o->model_name, cache, now_monotonic_ms() - t0, lm_vocab_size(s->base),
                         lm_ngram_count(s->base));
                goto out;
            }
            log_warnx("%s: cannot load the cached model (%s); training it again", cache,
                      err ? err : "unknown error");
            free(err);
            err = NULL;
        }
    }
    corpus = xasprintf("%s/base-corpus.jsonl", o->state_dir);
    rc = lm_corpus_write(corpus, o->base_seed, o->corpus_size);
    if (rc < 0) {
        errno = -rc;
        log_warn("%s: cannot write the base corpus", corpus);
        goto out;
    }
    if (o->base_corpus && (rc = append_file(corpus, o->base_corpus)) < 0) {
        errno = -rc;
        log_warn("%s: cannot add to the base corpus", o->base_corpus);
        goto out;
    }
    uint64_t t1 = now_monotonic_ms();
    s->base = lm_train_file(corpus, o->order, &err);
    if (!s->base) {
        log_warnx("training the base model failed: %s", err ? err : "unknown error");
        rc = -EIO;
        goto out;
    }
    log_info("base model %s trained in %" PRIu64 " ms (corpus %" PRIu64 " ms; seed %" PRIu64
             ", %zu examples per domain, order %d; vocab %zu, n-grams %zu)",
             o->model_name, now_monotonic_ms() - t1, t1 - t0, o->base_seed, o->corpus_size,
             o->order, lm_vocab_size(s->base), lm_ngram_count(s->base));
    if (unlink(corpus) < 0)
        log_warn("%s: cannot remove", corpus);
    if (cache && !o->base_corpus) {
        char *tmp = xasprintf("%s.tmp.%ld", cache, (long)getpid());
        int r = lm_save(s->base, tmp);
        if (r == 0 && rename(tmp, cache) == 0) {
            log_info("base model cached at %s", cache);
        } else {
            if (r < 0)
                errno = -r;
            log_warn("%s: cannot cache the base model", cache);
            unlink(tmp);
        }
        free(tmp);
    }
out:
    free(err);
    free(cache);
    free(corpus);
    return rc;
}

/* ---- readiness ---------------------------------------------------------------- */

static int write_port_file(const char *path, unsigned port)
{
    char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
    int rc = 0;
    FILE *f = fopen(tmp, "w");
    if (!f) {
        rc = -errno;
        goto out;
    }
    fprintf(f, "%u\n", port);
    if (fclose(f) != 0) {
        rc = -errno;
        goto out;
    }
    if (rename(tmp, path) < 0)
        rc = -errno;
out:
    if (rc < 0)
        unlink(tmp);
    free(tmp);
    return rc;
}

static void sim_init(struct sim *s)
{
    memset(s, 0, sizeof *s);
    struct sim_opts *o = &s->opts;
    o->behaviour.kind = SIM_HONEST;
    o->behaviour.fraction = 1.0;
    o->job_seconds = 2.0;
    o->slow_factor = 5.0;
    o->base_seed = 1;
    o->corpus_size = 300;
    o->order = LM_DEFAULT_ORDER;
    o->model_name = xstrdup("vtune-base");
    o->model_cache = 8;
    o->model_cache_bytes = 1024ULL * 1024 * 1024;
    o->max_upload = 64ULL * 1024 * 1024;
    o->max_body = 8ULL * 1024 * 1024;
    o->client_timeout_s = 60;
    o->max_connections = 1024;
    o->workers = 2;
    o->default_max_tokens = 256;
    o->min_examples = 1;
    o->min_repeats = 1;
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->stats_lock, NULL);
    pthread_mutex_init(&s->faults_lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    pthread_cond_init(&s->tick_cond, NULL);
    pthread_cond_init(&s->load_cond, NULL);
    s->st_requests = json_object();
    s->st_faults = json_object();
    s->st_tags = json_object();
    s->st_errors = json_object();
    s->fault_seq = json_object();
}

static void sim_cleanup(struct sim *s)
{
    sim_jobs_free_all(s);
    sim_files_free_all(s);
    sim_fault_rules_free(s->fault_rules, s->n_fault_rules);
    json_decref(s->st_requests);
    json_decref(s->st_faults);
    json_decref(s->st_tags);
    json_decref(s->st_errors);
    json_decref(s->fault_seq);
    lm_free(s->base);
    if (s->opts.state_dir_is_temp && s->opts.state_dir)
        nftw(s->opts.state_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (s->opts.port_file)
        unlink(s->opts.port_file);
    free(s->files_dir);
    free(s->jobs_dir);
    struct sim_opts *o = &s->opts;
    free(o->listen_host);
    free(o->api_key);
    free(o->faults_spec);
    free(o->model_name);
    free(o->state_dir);
    free(o->cache_dir);
    free(o->port_file);
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->stats_lock);
    pthread_mutex_destroy(&s->faults_lock);
    pthread_cond_destroy(&s->cond);
    pthread_cond_destroy(&s->tick_cond);
    pthread_cond_destroy(&s->load_cond);
}

/* The self-pipe the signal handler writes to; the main thread reads it.
 * Each message is the signal and the sender's pid (one atomic write of
 * less than PIPE_BUF), so the log says who asked for the shutdown: a
 * stray kill (say, a test's trap signalling a pid the kernel has since
 * given to this process or one of its threads) is then plain to see. */
struct sig_msg {
    int sig;
    pid_t from;
};
static int sig_pipe[2] = {-1, -1};

static void on_signal(int sig, siginfo_t *si, void *uctx)
{
    (void)uctx;
    int saved = errno;
    struct sig_msg m = {.sig = sig, .from = si ? si->si_pid : 0};
    if (write(sig_pipe[1], &m, sizeof m) < 0) {
        /* full pipe: a signal is already waiting to be read */
    }
    errno = saved;
}

/* Writes the command line of pid (NUL-separated in /proc) into out as one
 * line, or "?" when it is gone already. */
static void sender_cmdline(pid_t pid, char *out, size_t outlen)
{
    snprintf(out, outlen, "?");
    if (pid <= 0)
        return;
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/cmdline", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    size_t n = fread(out, 1, outlen - 1, f);
    fclose(f);
    if (n == 0) {
        snprintf(out, outlen, "?");
        return;
    }
    out[n] = '\0';
    for (size_t i = 0; i + 1 < n; i++)
        if (out[i] == '\0')
            out[i] = ' ';
}

int main(int argc, char **argv)
{
    static struct sim sim;
    struct sim *s = &sim;
    int rc = 1;
    log_init("vtune-sim", LOG_LVL_INFO);
    sim_init(s);
    parse_args(argc, argv, &s->opts);

    struct sim_fault_rule *rules = NULL;
    size_t n_rules = 0;
    char *err = NULL;
    if (sim_faults_parse(s->opts.faults_spec, &rules, &n_rules, &err) < 0) {
        fprintf(stderr, "vtune-sim: --faults: %s (see vtune-sim --help)\n", err);
        free(err);
        exit(2);
    }
    s->fault_rules = rules;
    s->n_fault_rules = n_rules;
    s->fault_seed = s->opts.seed;

    /* Every thread inherits this mask; the main thread unblocks the signals
     * once ready and waits on the self-pipe. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (pipe2(sig_pipe, O_CLOEXEC) < 0 || fcntl(sig_pipe[1], F_SETFL, O_NONBLOCK) < 0)
        fatal("cannot create the signal pipe");
    struct sigaction sa = {.sa_sigaction = on_signal};
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART | SA_SIGINFO;
    if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0)
        fatal("cannot install the signal handlers");

    s->started_at = now_unix();
    s->started_ms = now_monotonic_ms();
    if (make_state_dirs(s) < 0 || build_base(s) < 0)
        goto out;
    if (sim_jobs_start(s) < 0) {
        log_warnx("cannot start the job threads");
        goto out;
    }
    if (sim_http_start(s) < 0)
        goto out;
    char beh[32];
    sim_behaviour_format(&s->opts.behaviour, beh, sizeof beh);
    log_info("serving %s on %s port %u (behaviour %s, min repeats %u, job %gs, faults '%s' "
             "seed %" PRIu64 ", auth %s, state %s)",
             s->opts.model_name, s->opts.listen_host, s->bound_port, beh, s->opts.min_repeats,
             s->opts.job_seconds, s->opts.faults_spec ? s->opts.faults_spec : "", s->opts.seed,
             s->opts.api_key ? "on" : "off", s->opts.state_dir);
    if (s->opts.port_file) {
        int r = write_port_file(s->opts.port_file, s->bound_port);
        if (r < 0) {
            errno = -r;
            log_warn("--port-file %s: cannot write it", s->opts.port_file);
            goto out;
        }
    }
    bool v6 = strchr(s->opts.listen_host, ':') != NULL;
    printf("vtune-sim: listening on http://%s%s%s:%u\n", v6 ? "[" : "", s->opts.listen_host,
           v6 ? "]" : "", s->bound_port);
    fflush(stdout);

    pthread_sigmask(SIG_UNBLOCK, &set, NULL); /* a signal pending since start-up lands now */
    struct sig_msg m = {0};
    for (;;) {
        ssize_t r = read(sig_pipe[0], &m, sizeof m);
        if (r == (ssize_t)sizeof m || (r < 0 && errno != EINTR))
            break;
    }
    char who[256];
    sender_cmdline(m.from, who, sizeof who);
    log_info("signal %d from pid %ld (%s): shutting down", m.sig, (long)m.from, who);
    rc = 0;
out:
    __atomic_store_n(&s->stopping, true, __ATOMIC_RELEASE);
    pthread_mutex_lock(&s->lock);
    pthread_cond_broadcast(&s->load_cond);
    pthread_mutex_unlock(&s->lock);
    sim_http_stop(s);
    sim_jobs_stop(s);
    sim_cleanup(s);
    for (int i = 0; i < 2; i++)
        if (sig_pipe[i] >= 0)
            close(sig_pipe[i]);
    return rc;
}
