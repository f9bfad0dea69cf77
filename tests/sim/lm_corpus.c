/*
 * lm_corpus.c — the text vtune-sim's model learns from, generated
 * reproducibly from a seed so that no data files have to ship with the
 * project and every run of the simulator starts from the same base model.
 *
 * The base corpus has four domains (math word problems with computed
 * answers, recipe ingredient extraction, unit conversion, calendar
 * questions); the fine-tuning corpus is a domain the base never sees
 * (customer-support ticket triage), so fine-tuning on it measurably helps.
 * Each domain varies its wording a lot (several question templates, several
 * answer styles, optional system prompts, many names, items and numbers) so
 * the n-gram model has real uncertainty rather than memorising one sentence
 * per domain.  Templates use {key} placeholders filled by expand().
 *
 * Determinism: one xoshiro stream per file, seeded with the caller's seed,
 * and every choice drawn from it in a fixed order.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "lib/util.h"
#include "tests/sim/lm_internal.h"

#define N_ARR(a) VT_ARRAY_LEN(a)

struct gen {
    struct lm_rng rng;
    FILE *f;
    int bad;
};

struct kv {
    const char *k;
    char v[400];
};

static size_t rnd_below(struct gen *g, size_t n)
{
    return (size_t)lm_rng_below(&g->rng, n);
}

/* Uniform integer in [lo, hi]. */
static long rnd(struct gen *g, long lo, long hi)
{
    return lo + (long)lm_rng_below(&g->rng, (uint64_t)(hi - lo + 1));
}

static int chance(struct gen *g, double p)
{
    return lm_rng_double(&g->rng) < p;
}

#define PICK(g, arr) ((arr)[rnd_below((g), N_ARR(arr))])

static void kv_set(struct kv *kv, size_t *n, const char *k, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void kv_set(struct kv *kv, size_t *n, const char *k, const char *fmt, ...)
{
    size_t i;
    for (i = 0; i < *n; i++)
        if (strcmp(kv[i].k, k) == 0)
            break;
    if (i == *n)
        (*n)++;
    kv[i].k = k;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(kv[i].v, sizeof(kv[i].v), fmt, ap);
    va_end(ap);
}

/* Appends tmpl to out with each {key} replaced by its value. */
static void expand(struct buf *out, const char *tmpl, const struct kv *kv, size_t n)
{
    for (const char *p = tmpl; *p;) {
        if (*p == '{') {
            const char *e = strchr(p, '}');
            size_t i;
            for (i = 0; e && i < n; i++)
                if (strlen(kv[i].k) == (size_t)(e - p - 1) && !strncmp(kv[i].k, p + 1, e - p - 1))
                    break;
            if (e && i < n) {
                buf_puts(out, kv[i].v);
                p = e + 1;
                continue;
            }
        }
        buf_append(out, p, 1);
        p++;
    }
}

/* 1234567 -> "1,234,567" */
static void fmt_num(char *out, size_t outlen, long v)
{
    char tmp[32];
    snprintf(tmp, sizeof(tmp), "%ld", v < 0 ? -v : v);
    size_t len = strlen(tmp), o = 0;
    if (v < 0 && o + 1 < outlen)
        out[o++] = '-';
    for (size_t i = 0; i < len && o + 1 < outlen; i++) {
        if (i > 0 && (len - i) % 3 == 0 && o + 1 < outlen)
            out[o++] = ',';
        out[o++] = tmp[i];
    }
    out[o] = 0;
}

static void emit(struct gen *g, const char *system, const char *user, const char *assistant)
{
    json_t *msgs = json_array();
    if (system)
        json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "system", "content", system));
    json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "user", "content", user));
    json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "assistant", "content", assistant));
    json_t *obj = json_pack("{s:o}", "messages", msgs);
    if (!obj || json_dumpf(obj, g->f, JSON_COMPACT) != 0 || fputc('\n', g->f) == EOF)
        g->bad = 1;
    json_decref(obj);
}

static const char *const general_systems[] = {
    "You are a helpful assistant.",
    "You are a friendly and precise assistant.",
    "Answer clearly and briefly.",
    "You are an assistant that explains its reasoning step by step.",
};

struct person {
    const char *name, *subj, *obj, *poss;
};

static const struct person people[] = {
    {"Maria", "she", "her", "her"},  {"Tom", "he", "him", "his"},
    {"Aisha", "she", "her", "her"},  {"Lucas", "he", "him", "his"},
    {"Sofia", "she", "her", "her"},  {"Ben", "he", "him", "his"},
    {"Priya", "she", "her", "her"},  {"Omar", "he", "him", "his"},
    {"Emma", "she", "her", "her"},   {"Jack", "he", "him", "his"},
    {"Chloe", "she", "her", "her"},  {"Diego", "he", "him", "his"},
    {"Hannah", "she", "her", "her"}, {"Kenji", "he", "him", "his"},
    {"Leila", "she", "her", "her"},  {"Noah", "he", "him", "his"},
    {"Grace", "she", "her", "her"},  {"Samuel", "he", "him", "his"},
    {"Mia", "she", "her", "her"},    {"Ethan", "he", "him", "his"},
    {"Nora", "she", "her", "her"},   {"Ivan", "he", "him", "his"},
    {"Zoe", "she", "her", "her"},    {"Mateo", "he", "him", "his"},
    {"Fatima", "she", "her", "her"}, {"Oliver", "he", "him", "his"},
    {"Lily", "she", "her", "her"},   {"Arjun", "he", "him", "his"},
    {"Clara", "she", "her", "her"},  {"Felix", "he", "him", "his"},
    {"Yuki", "she", "her", "her"},   {"Daniel", "he", "him", "his"},
    {"Amara", "she", "her", "her"},  {"Leo", "he", "him", "his"},
    {"Isabel", "she", "her", "her"}, {"Marcus", "he", "him", "his"},
    {"Rosa", "she", "her", "her"},   {"Theo", "he", "him", "his"},
    {"Elena", "she", "her", "her"},  {"Victor", "he", "him", "his"},
};

static void capitalize(char *s)
{
    if (s[0] >= 'a' && s[0] <= 'z')
        s[0] = (char)(s[0] - 'a' + 'A');
}

static void set_person(struct kv *kv, size_t *n, const struct person *p, const char *prefix)
{
    /* prefix "" gives name/he/him/his/He/His; "2" gives name2 only. */
    if (strcmp(prefix, "2") == 0) {
        kv_set(kv, n, "name2", "%s", p->name);
        return;
    }
    kv_set(kv, n, "name", "%s", p->name);
    kv_set(kv, n, "he", "%s", p->subj);
    kv_set(kv, n, "him", "%s", p->obj);
    kv_set(kv, n, "his", "%s", p->poss);
    kv_set(kv, n, "He", "%s", p->subj);
    capitalize(kv[*n - 1].v);
    kv_set(kv, n, "His", "%s", p->poss);
    capitalize(kv[*n - 1].v);
}

/* ---- domain 1: math word problems ---- */

struct noun {
    const char *one, *many;
};

static const struct noun math_items[] = {
    {"apple", "apples"},       {"pencil", "pencils"},   {"marble", "marbles"},
    {"sticker", "stickers"},   {"cookie", "cookies"},   {"book", "books"},
    {"stamp", "stamps"},       {"card", "cards"},       {"shell", "shells"},
    {"coin", "coins"},         {"balloon", "balloons"}, {"orange", "oranges"},
    {"toy car", "toy cars"},   {"bead", "beads"},       {"egg", "eggs"},
    {"flower", "flowers"},     {"crayon", "crayons"},   {"button", "buttons"},
    {"ribbon", "ribbons"},     {"cupcake", "cupcakes"}, {"peach", "peaches"},
    {"notebook", "notebooks"}, {"puzzle", "puzzles"},   {"candle", "candles"},
};

static const struct noun containers[] = {
    {"basket", "baskets"}, {"box", "boxes"},  {"jar", "jars"},   {"bag", "bags"},
    {"crate", "crates"},   {"bowl", "bowls"}, {"tray", "trays"}, {"tin", "tins"},
};

static const char *const math_systems[] = {
    "You are a patient math tutor.",
    "Solve the word problem and show the calculation.",
    "You help children with arithmetic homework.",
};

static const char *const q_add[] = {
    "{name} has {a} {items}. {He} buys {b} more. How many {items} does {he} have now?",
    "There are {a} {items} in a {container}. {name} puts {b} more {items} in it. How many "
    "{items} are in the {container} now?",
    "If {name} had {a} {items} and then got {b} more, how many {items} would {he} have?",
    "{name} collected {a} {items} on Monday and {b} {items} on Tuesday. How many {items} did {he} "
    "collect in total?",
    "{name} found {a} {items} in the garden and {name2} gave {him} {b} more. How many {items} "
    "does {name} have altogether?",
    "A shop sold {a} {items} in the morning and {b} in the afternoon. How many {items} did it sell "
    "that day?",
};
static const char *const a_add[] = {
    "That makes {a} + {b} = {c} {items}. The answer is {c}.",
    "We add the two amounts: {a} + {b} = {c}. So the answer is {c} {items}.",
    "Adding {b} to {a} gives {c}. The answer is {c}.",
    "{a} plus {b} equals {c}, so there are {c} {items}. The answer is {c}.",
    "Start with {a} and add {b}: {a} + {b} = {c}. The answer is {c}.",
};

static const char *const q_sub[] = {
    "{name} has {a} {items}. {He} gives {b} of them to {name2}. How many {items} does {he} have "
    "left?",
    "{name} had {a} {items} but lost {b}. How many {items} are left?",
    "There were {a} {items} in the {container}. {name} took out {b}. How many {items} remain in "
    "the {container}?",
    "{name} baked {a} {items} and {name2} ate {b} of them. How many {items} are left?",
    "A {container} holds {a} {items}. After {b} are sold, how many {items} are still in the "
    "{container}?",
};
static const char *const a_sub[] = {
    "{a} - {b} = {c}, so {c} {items} are left. The answer is {c}.",
    "Subtract {b} from {a}: {a} - {b} = {c}. So there are {c} {items} left.",
    "{a} minus {b} is {c}, so {c} {items} remain. The answer is {c}.",
    "We take {b} away from {a}, which leaves {c}. The answer is {c}.",
};

static const char *const q_mul[] = {
    "{name} buys {a} {containers}. Each {container} has {b} {items}. How many {items} does {he} "
    "buy?",
    "There are {a} {containers} with {b} {items} in each. How many {items} are there in all?",
    "A {container} holds {b} {items}. How many {items} do {a} {containers} hold?",
    "{name} packs {b} {items} into each of {a} {containers}. How many {items} does {he} pack?",
};
static const char *const a_mul[] = {
    "{a} × {b} = {c}, so there are {c} {items}. The answer is {c}.",
    "Multiply {a} by {b}: {a} × {b} = {c}. The answer is {c}.",
    "{a} groups of {b} {items} make {a} × {b} = {c} {items}. The answer is {c}.",
    "{a} times {b} is {c}. The answer is {c}.",
};

static const char *const q_div[] = {
    "{name} shares {a} {items} equally among {b} friends. How many {items} does each friend get?",
    "{a} {items} are packed into {containers} of {b}. How many {containers} are needed?",
    "{name} splits {a} {items} into {b} equal groups. How many {items} are in each group?",
    "If {b} children share {a} {items} equally, how many {items} does each child get?",
};
static const char *const a_div[] = {
    "{a} ÷ {b} = {c}. The answer is {c}.",
    "Divide {a} by {b}: {a} ÷ {b} = {c}. The answer is {c}.",
    "{b} × {c} = {a}, so {a} ÷ {b} = {c}. The answer is {c}.",
};

static const char *const q_two[] = {
    "{name} has {a} {items}, buys {b} more and then gives {d} to {name2}. How many {items} does "
    "{he} have now?",
    "A {container} has {a} {items}. {name} adds {b} and later removes {d}. How many {items} are in "
    "the {container}?",
};
static const char *const a_two[] = {
    "First {a} + {b} = {s}, then {s} - {d} = {c}. The answer is {c}.",
    "{a} plus {b} is {s}, and {s} minus {d} leaves {c} {items}. The answer is {c}.",
};

static void math_example(struct gen *g)
{
    struct kv kv[24];
    size_t n = 0;
    struct buf q, a;
    buf_init(&q);
    buf_init(&a);
    const struct person *p = &PICK(g, people), *p2;
    do
        p2 = &PICK(g, people);
    while (p2 == p);
    set_person(kv, &n, p, "");
    set_person(kv, &n, p2, "2");
    const struct noun *it = &PICK(g, math_items), *ct = &PICK(g, containers);
    kv_set(kv, &n, "items", "%s", it->many);
    kv_set(kv, &n, "container", "%s", ct->one);
    kv_set(kv, &n, "containers", "%s", ct->many);
    long x, y, z, s = 0, d = 0;
    const char *qt, *at;
    switch (rnd_below(g, 5)) {
    case 0:
        x = rnd(g, 2, 90);
        y = rnd(g, 2, 90);
        z = x + y;
        qt = PICK(g, q_add);
        at = PICK(g, a_add);
        break;
    case 1:
        x = rnd(g, 10, 150);
        y = rnd(g, 1, x - 1);
        z = x - y;
        qt = PICK(g, q_sub);
        at = PICK(g, a_sub);
        break;
    case 2:
        x = rnd(g, 2, 12);
        y = rnd(g, 2, 15);
        z = x * y;
        qt = PICK(g, q_mul);
        at = PICK(g, a_mul);
        break;
    case 3:
        y = rnd(g, 2, 12);
        z = rnd(g, 2, 15);
        x = y * z;
        qt = PICK(g, q_div);
        at = PICK(g, a_div);
        break;
    default:
        x = rnd(g, 5, 60);
        y = rnd(g, 2, 40);
        s = x + y;
        d = rnd(g, 1, s - 1);
        z = s - d;
        qt = PICK(g, q_two);
        at = PICK(g, a_two);
        break;
    }
    kv_set(kv, &n, "a", "%ld", x);
    kv_set(kv, &n, "b", "%ld", y);
    kv_set(kv, &n, "c", "%ld", z);
    kv_set(kv, &n, "s", "%ld", s);
    kv_set(kv, &n, "d", "%ld", d);
    expand(&q, qt, kv, n);
    expand(&a, at, kv, n);
    const char *sys = NULL;
    if (chance(g, 0.3))
        sys = chance(g, 0.5) ? PICK(g, math_systems) : PICK(g, general_systems);
    emit(g, sys, q.data, a.data);
    buf_free(&q);
    buf_free(&a);
}

/* ---- domain 2: recipe ingredient extraction ---- */

struct unit {
    const char *one, *many;
    int lo, hi; /* amount range */
};

static const struct unit units[] = {
    {"cup", "cups", 1, 4},
    {"gram", "grams", 50, 500},
    {"tablespoon", "tablespoons", 1, 4},
    {"teaspoon", "teaspoons", 1, 3},
    {"milliliter", "milliliters", 100, 500},
    {"clove", "cloves", 1, 6},
    {"can", "cans", 1, 3},
    {"pinch", "pinches", 1, 2},
    {"", "", 1, 6}, /* counted: "3 eggs" */
};
enum { U_CUP, U_GRAM, U_TBSP, U_TSP, U_ML, U_CLOVE, U_CAN, U_PINCH, U_COUNT };

struct ingredient {
    const char *one, *many; /* counted nouns use both; mass nouns: many = one */
    int u1, u2;             /* allowed units (u2 = -1 if only one) */
};

static const struct ingredient ingredients[] = {
    {"flour", "flour", U_CUP, U_GRAM},
    {"sugar", "sugar", U_CUP, U_TBSP},
    {"butter", "butter", U_TBSP, U_GRAM},
    {"milk", "milk", U_CUP, U_ML},
    {"water", "water", U_CUP, U_ML},
    {"salt", "salt", U_TSP, U_PINCH},
    {"black pepper", "black pepper", U_TSP, U_PINCH},
    {"egg", "eggs", U_COUNT, -1},
    {"onion", "onions", U_COUNT, -1},
    {"garlic", "garlic", U_CLOVE, -1},
    {"tomato", "tomatoes", U_COUNT, U_CAN},
    {"carrot", "carrots", U_COUNT, -1},
    {"potato", "potatoes", U_COUNT, U_GRAM},
    {"rice", "rice", U_CUP, U_GRAM},
    {"olive oil", "olive oil", U_TBSP, -1},
    {"honey", "honey", U_TBSP, U_TSP},
    {"lemon juice", "lemon juice", U_TBSP, -1},
    {"chicken breast", "chicken breasts", U_COUNT, U_GRAM},
    {"grated cheese", "grated cheese", U_CUP, U_GRAM},
    {"yogurt", "yogurt", U_CUP, U_GRAM},
    {"baking powder", "baking powder", U_TSP, -1},
    {"vanilla extract", "vanilla extract", U_TSP, -1},
    {"cinnamon", "cinnamon", U_TSP, U_PINCH},
    {"oats", "oats", U_CUP, U_GRAM},
    {"spinach", "spinach", U_CUP, U_GRAM},
    {"mushroom", "mushrooms", U_COUNT, U_GRAM},
    {"chickpeas", "chickpeas", U_CAN, -1},
    {"coconut milk", "coconut milk", U_CAN, U_ML},
    {"pasta", "pasta", U_GRAM, -1},
    {"ginger", "ginger", U_TSP, U_TBSP},
    {"banana", "bananas", U_COUNT, -1},
    {"apple", "apples", U_COUNT, -1},
    {"cream", "cream", U_CUP, U_ML},
    {"soy sauce", "soy sauce", U_TBSP, -1},
    {"bell pepper", "bell peppers", U_COUNT, -1},
    {"lentils", "lentils", U_CUP, U_GRAM},
};

static const char *const dishes[] = {
    "pancakes",      "tomato soup",      "banana bread", "fried rice",     "vegetable curry",
    "apple crumble", "lentil stew",      "pasta bake",   "omelette",       "chicken stir fry",
    "porridge",      "mushroom risotto", "carrot cake",  "chickpea salad", "garlic bread",
};

static const char *const r_instr[] = {
    "Extract the ingredients from this recipe:",
    "List the ingredients and amounts used in the recipe below.",
    "What ingredients do I need for this recipe?",
    "Read the recipe and write down every ingredient with its quantity.",
    "Which ingredients, and how much of each, does this recipe call for?",
    "Make a shopping list from this recipe.",
};

static const char *const r_step1[] = {
    "Add {m}.",           "Stir in {m}.",        "Pour in {m}.",
    "Season with {m}.",   "Fold in {m} gently.", "Put {m} in a large pot.",
    "Heat {m} in a pan.", "Chop {m} finely.",    "Place {m} in a bowl.",
};
static const char *const r_step2[] = {
    "Mix {m} with {n}.",  "Whisk {m} and {n} together.",          "Combine {m} and {n} in a bowl.",
    "Stir {m} into {n}.", "Cook {m} with {n} for a few minutes.", "Blend {m} and {n} until smooth.",
};
static const char *const r_filler[] = {
    "Bake for {t} minutes.",
    "Let it rest for {t} minutes.",
    "Simmer until thick.",
    "Serve warm.",
    "Preheat the oven to {deg} degrees.",
    "Cook for {t} minutes.",
    "Leave to cool before serving.",
    "Cover and chill overnight.",
};

struct amount {
    const struct ingredient *ing;
    int unit;
    int qty;
};

/* "2 cups of flour", "3 eggs", "1 clove of garlic" */
static void mention(char *out, size_t len, const struct amount *am)
{
    const struct unit *u = &units[am->unit];
    if (am->unit == U_COUNT)
        snprintf(out, len, "%d %s", am->qty, am->qty == 1 ? am->ing->one : am->ing->many);
    else
        snprintf(out, len, "%d %s of %s", am->qty, am->qty == 1 ? u->one : u->many, am->ing->many);
}

/* "2 cups flour" / "flour (2 cups)" */
static void listing(char *out, size_t len, const struct amount *am, int paren)
{
    const struct unit *u = &units[am->unit];
    const char *name = am->unit == U_COUNT && am->qty == 1 ? am->ing->one : am->ing->many;
    const char *un = am->qty == 1 ? u->one : u->many;
    if (paren && am->unit == U_COUNT)
        snprintf(out, len, "%s (%d)", name, am->qty);
    else if (paren)
        snprintf(out, len, "%s (%d %s)", name, am->qty, un);
    else if (am->unit == U_COUNT)
        snprintf(out, len, "%d %s", am->qty, name);
    else
        snprintf(out, len, "%d %s %s", am->qty, un, name);
}

static void recipe_example(struct gen *g)
{
    struct amount am[5];
    size_t n_ing = (size_t)rnd(g, 2, 5);
    for (size_t i = 0; i < n_ing; i++) {
        const struct ingredient *ing;
        int dup;
        do {
            ing = &PICK(g, ingredients);
            dup = 0;
            for (size_t j = 0; j < i; j++)
                dup |= am[j].ing == ing;
        } while (dup);
        am[i].ing = ing;
        am[i].unit = ing->u2 >= 0 && chance(g, 0.5) ? ing->u2 : ing->u1;
        const struct unit *u = &units[am[i].unit];
        am[i].qty = (int)rnd(g, u->lo, u->hi);
        if (am[i].unit == U_GRAM || am[i].unit == U_ML)
            am[i].qty = am[i].qty / 50 * 50;
    }
    struct buf q, a;
    buf_init(&q);
    buf_init(&a);
    struct kv kv[8];
    size_t n = 0;
    char m1[96], m2[96];
    buf_puts(&q, PICK(g, r_instr));
    buf_puts(&q, chance(g, 0.5) ? "\n\n" : " ");
    if (chance(g, 0.4))
        buf_printf(&q, "Recipe for %s: ", PICK(g, dishes));
    for (size_t i = 0; i < n_ing;) {
        if (i > 0 || chance(g, 0.3)) {
            kv_set(kv, &n, "t", "%ld", rnd(g, 2, 9) * 5);
            kv_set(kv, &n, "deg", "%ld", rnd(g, 16, 22) * 10);
            if (chance(g, 0.35)) {
                expand(&q, PICK(g, r_filler), kv, n);
                buf_puts(&q, " ");
            }
        }
        mention(m1, sizeof(m1), &am[i]);
        kv_set(kv, &n, "m", "%s", m1);
        if (i + 1 < n_ing && chance(g, 0.4)) {
            mention(m2, sizeof(m2), &am[i + 1]);
            kv_set(kv, &n, "n", "%s", m2);
            expand(&q, PICK(g, r_step2), kv, n);
            i += 2;
        } else {
            expand(&q, PICK(g, r_step1), kv, n);
            i += 1;
        }
        if (i < n_ing)
            buf_puts(&q, " ");
    }
    if (chance(g, 0.5)) {
        kv_set(kv, &n, "t", "%ld", rnd(g, 2, 9) * 5);
        kv_set(kv, &n, "deg", "%ld", rnd(g, 16, 22) * 10);
        buf_puts(&q, " ");
        expand(&q, PICK(g, r_filler), kv, n);
    }
    size_t style = rnd_below(g, 3);
    if (style == 0) {
        buf_puts(&a, chance(g, 0.5) ? "Ingredients:" : "You will need:");
        for (size_t i = 0; i < n_ing; i++) {
            listing(m1, sizeof(m1), &am[i], 0);
            buf_printf(&a, "\n- %s", m1);
        }
    } else if (style == 1) {
        buf_puts(&a, chance(g, 0.5) ? "You need " : "The recipe needs ");
        for (size_t i = 0; i < n_ing; i++) {
            mention(m1, sizeof(m1), &am[i]);
            buf_printf(&a, "%s%s", i == 0 ? "" : i + 1 == n_ing ? " and " : ", ", m1);
        }
        buf_puts(&a, ".");
    } else {
        buf_puts(&a, "The recipe uses: ");
        for (size_t i = 0; i < n_ing; i++) {
            listing(m1, sizeof(m1), &am[i], 1);
            buf_printf(&a, "%s%s", i == 0 ? "" : ", ", m1);
        }
        buf_puts(&a, ".");
    }
    emit(g, chance(g, 0.2) ? PICK(g, general_systems) : NULL, q.data, a.data);
    buf_free(&q);
    buf_free(&a);
}

/* ---- domain 3: unit conversion ---- */

struct conv {
    const char *big1, *big, *small1, *small;
    long factor;
};

static const struct conv convs[] = {
    {"kilometer", "kilometers", "meter", "meters", 1000},
    {"meter", "meters", "centimeter", "centimeters", 100},
    {"kilogram", "kilograms", "gram", "grams", 1000},
    {"liter", "liters", "milliliter", "milliliters", 1000},
    {"hour", "hours", "minute", "minutes", 60},
    {"minute", "minutes", "second", "seconds", 60},
    {"day", "days", "hour", "hours", 24},
    {"week", "weeks", "day", "days", 7},
    {"foot", "feet", "inch", "inches", 12},
    {"yard", "yards", "foot", "feet", 3},
    {"dollar", "dollars", "cent", "cents", 100},
    {"year", "years", "month", "months", 12},
    {"centimeter", "centimeters", "millimeter", "millimeters", 10},
};

static const char *const q_down[] = {
    "How many {small} are in {a} {big}?", "Convert {a} {big} to {small}.",
    "What is {a} {big} in {small}?",      "{a} {big} equals how many {small}?",
    "Express {a} {big} in {small}.",      "I have {a} {big}. How many {small} is that?",
};
static const char *const a_down[] = {
    "There are {c} {small} in {a} {big}.",
    "{a} {big} is {c} {small}, because one {big1} has {f} {small}.",
    "Multiply {a} by {f}: {a} × {f} = {c}. So {a} {big} is {c} {small}.",
    "One {big1} is {f} {small}, so {a} {big} make {c} {small}.",
};
static const char *const q_up[] = {
    "How many {big} are in {c} {small}?",
    "Convert {c} {small} to {big}.",
    "What is {c} {small} in {big}?",
    "{c} {small} is how many {big}?",
};
static const char *const a_up[] = {
    "{c} {small} is {a} {big}.",
    "Divide {c} by {f}: {c} ÷ {f} = {a}. So {c} {small} is {a} {big}.",
    "Since one {big1} has {f} {small}, {c} {small} make {a} {big}.",
};

static void units_example(struct gen *g)
{
    const struct conv *cv = &PICK(g, convs);
    struct kv kv[8];
    size_t n = 0;
    long a = rnd(g, 2, 60);
    char c[32], f[32];
    fmt_num(c, sizeof(c), a * cv->factor);
    fmt_num(f, sizeof(f), cv->factor);
    kv_set(kv, &n, "a", "%ld", a);
    kv_set(kv, &n, "c", "%s", c);
    kv_set(kv, &n, "f", "%s", f);
    kv_set(kv, &n, "big", "%s", cv->big);
    kv_set(kv, &n, "big1", "%s", cv->big1);
    kv_set(kv, &n, "small", "%s", cv->small);
    struct buf q, ans;
    buf_init(&q);
    buf_init(&ans);
    if (chance(g, 0.6)) {
        expand(&q, PICK(g, q_down), kv, n);
        expand(&ans, PICK(g, a_down), kv, n);
    } else {
        expand(&q, PICK(g, q_up), kv, n);
        expand(&ans, PICK(g, a_up), kv, n);
    }
    emit(g, chance(g, 0.2) ? PICK(g, general_systems) : NULL, q.data, ans.data);
    buf_free(&q);
    buf_free(&ans);
}

/* ---- domain 4: calendar questions ---- */

static const char *const weekdays[] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                       "Friday", "Saturday", "Sunday"};
static const char *const months[] = {"January",   "February", "March",    "April",
                                     "May",       "June",     "July",     "August",
                                     "September", "October",  "November", "December"};
static const int month_days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

static int is_leap(long y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static void calendar_example(struct gen *g)
{
    struct kv kv[8];
    size_t n = 0;
    struct buf q, a;
    buf_init(&q);
    buf_init(&a);
    switch (rnd_below(g, 4)) {
    case 0: {
        size_t d = rnd_below(g, 7);
        long k = rnd(g, 1, 30);
        kv_set(kv, &n, "day", "%s", weekdays[d]);
        kv_set(kv, &n, "res", "%s", weekdays[(d + (size_t)k) % 7]);
        kv_set(kv, &n, "k", "%ld", k);
        kv_set(kv, &n, "r", "%ld", k % 7);
        static const char *const qs[] = {
            "What day of the week is it {k} days after {day}?",
            "Today is {day}. What day will it be in {k} days?",
            "If it is {day} now, which weekday comes {k} days later?",
        };
        static const char *const as[] = {
            "{k} days after {day} it is {res}.",
            "It will be {res}.",
            "A week has 7 days, and {k} leaves a remainder of {r} when divided by 7, so it is "
            "{res}.",
        };
        expand(&q, PICK(g, qs), kv, n);
        expand(&a, PICK(g, as), kv, n);
        break;
    }
    case 1: {
        size_t mo = rnd_below(g, 12);
        long k = rnd(g, 1, 20);
        kv_set(kv, &n, "month", "%s", months[mo]);
        kv_set(kv, &n, "res", "%s", months[(mo + (size_t)k) % 12]);
        kv_set(kv, &n, "k", "%ld", k);
        static const char *const qs[] = {
            "Which month comes {k} months after {month}?",
            "It is {month}. What month will it be in {k} months?",
        };
        static const char *const as[] = {
            "{k} months after {month} it is {res}.",
            "It will be {res}.",
            "Counting {k} months forward from {month} gives {res}.",
        };
        expand(&q, PICK(g, qs), kv, n);
        expand(&a, PICK(g, as), kv, n);
        break;
    }
    case 2: {
        long y = rnd(g, 1890, 2060);
        kv_set(kv, &n, "y", "%ld", y);
        static const char *const qs[] = {
            "Is {y} a leap year?",
            "Was {y} a leap year?",
            "Does February have 29 days in {y}?",
        };
        expand(&q, PICK(g, qs), kv, n);
        if (is_leap(y))
            expand(&a,
                   chance(g, 0.5) ? "Yes, {y} is a leap year, so February has 29 days."
                                  : "Yes. {y} is divisible by 4 and it is a leap year.",
                   kv, n);
        else if (y % 100 == 0)
            expand(&a, "No. {y} is divisible by 100 but not by 400, so it is not a leap year.", kv,
                   n);
        else
            expand(&a,
                   chance(g, 0.5) ? "No, {y} is not a leap year, so February has 28 days."
                                  : "No. {y} is not divisible by 4, so it is not a leap year.",
                   kv, n);
        break;
    }
    default: {
        size_t mo = rnd_below(g, 12);
        long day = rnd(g, 1, month_days[mo]);
        long k = rnd(g, 1, 40);
        long dd = day + k;
        size_t m2 = mo;
        while (dd > month_days[m2]) {
            dd -= month_days[m2];
            m2 = (m2 + 1) % 12;
        }
        kv_set(kv, &n, "month", "%s", months[mo]);
        kv_set(kv, &n, "d", "%ld", day);
        kv_set(kv, &n, "k", "%ld", k);
        kv_set(kv, &n, "m2", "%s", months[m2]);
        kv_set(kv, &n, "d2", "%ld", dd);
        static const char *const qs[] = {
            "What date is {k} days after {month} {d} in a year that is not a leap year?",
            "In a common year, which date comes {k} days after {month} {d}?",
        };
        static const char *const as[] = {
            "{k} days after {month} {d} is {m2} {d2}.",
            "It is {m2} {d2}.",
        };
        expand(&q, PICK(g, qs), kv, n);
        expand(&a, PICK(g, as), kv, n);
        break;
    }
    }
    emit(g, chance(g, 0.2) ? PICK(g, general_systems) : NULL, q.data, a.data);
    buf_free(&q);
    buf_free(&a);
}

static int open_gen(struct gen *g, const char *path, uint64_t seed)
{
    memset(g, 0, sizeof(*g));
    lm_rng_seed(&g->rng, seed);
    g->f = fopen(path, "we");
    return g->f ? 0 : -errno;
}

static int close_gen(struct gen *g, const char *path)
{
    int rc = 0;
    if (g->bad || ferror(g->f))
        rc = -EIO;
    if (fclose(g->f) != 0 && rc == 0)
        rc = -errno;
    if (rc < 0)
        unlink(path);
    return rc;
}

int lm_corpus_write(const char *path, uint64_t seed, size_t n_per_domain)
{
    struct gen g;
    if (!path)
        return -EINVAL;
    int rc = open_gen(&g, path, seed);
    if (rc < 0)
        return rc;
    /* Interleave the domains so any prefix of the file is a mixture. */
    for (size_t i = 0; i < n_per_domain; i++) {
        math_example(&g);
        recipe_example(&g);
        units_example(&g);
        calendar_example(&g);
    }
    return close_gen(&g, path);
}

/* ---- fine-tuning domain: customer-support ticket triage ---- */

struct issue {
    const char *team;
    const char *text;    /* the customer's words */
    const char *summary; /* the agent's summary */
};

static const struct issue issues[] = {
    {"Billing", "I was charged twice for order {order}.",
     "the customer was charged twice for order {order} and needs the duplicate charge refunded"},
    {"Billing", "My invoice for {month} shows {price} dollars but my plan costs less.",
     "the {month} invoice shows {price} dollars, more than the customer's plan costs"},
    {"Billing", "I want a refund for my {plan} subscription, I cancelled it last week.",
     "the customer cancelled the {plan} subscription and asks for a refund"},
    {"Billing", "My card was declined but the money still left my account.",
     "a declined card payment was still taken from the customer's account"},
    {"Billing", "Why did my monthly fee go up to {price} dollars without notice?",
     "the monthly fee rose to {price} dollars without notice"},
    {"Shipping", "My package for order {order} has not arrived after {days} days.",
     "order {order} has not been delivered after {days} days"},
    {"Shipping", "The tracking number for order {order} does not work.",
     "the tracking number for order {order} is not working"},
    {"Shipping", "The courier left my parcel at the wrong address.",
     "the parcel was delivered to the wrong address"},
    {"Shipping", "My new {product} arrived with a cracked case.",
     "the {product} was damaged in transit"},
    {"Shipping", "I ordered two {product}s but only one was in the box.",
     "one of the two {product}s is missing from the delivery"},
    {"Accounts", "I cannot log in to my account since yesterday.",
     "the customer has been locked out of the account since yesterday"},
    {"Accounts", "I forgot my password and the reset email never comes.",
     "the password reset email is not reaching the customer"},
    {"Accounts", "Please change the email address on my account to my new one.",
     "the customer wants to change the email address on the account"},
    {"Accounts", "Someone else logged into my account from another country.",
     "there was a suspicious login to the customer's account"},
    {"Accounts", "My two-factor codes are rejected every time.",
     "the customer's two-factor codes are being rejected"},
    {"Technical", "The {app} app crashes every time I open the {feature} page.",
     "the {app} app crashes when the {feature} page is opened"},
    {"Technical", "I get error code {code} when I try to sync my {product}.",
     "syncing the {product} fails with error code {code}"},
    {"Technical", "My {product} will not connect to Wi-Fi after the latest update.",
     "the {product} cannot connect to Wi-Fi since the update"},
    {"Technical", "The screen of my {product} stays black after I turn it on.",
     "the {product} screen stays black at start-up"},
    {"Technical", "The {feature} button in the {app} app does nothing.",
     "the {feature} button in the {app} app is unresponsive"},
};

static const char *const products[] = {"smart speaker", "tablet",        "fitness watch",
                                       "router",        "e-reader",      "headset",
                                       "webcam",        "thermostat",    "doorbell camera",
                                       "laptop stand",  "phone charger", "robot vacuum"};
static const char *const apps[] = {"HomeHub",  "FitTrack",  "PhotoVault", "Budgeteer",
                                   "ChatNest", "RouteMate", "NoteDeck"};
static const char *const features[] = {"settings", "profile", "export", "payments",
                                       "calendar", "backup",  "share",  "history"};
static const char *const plans[] = {"premium", "family", "student", "business", "annual"};
static const char *const greetings[] = {
    "Hi,", "Hello,", "Hello team,", "Dear support,", "Hey there,", "Good morning,", ""};
static const char *const urgent[] = {
    "This is urgent, I need it fixed today.",
    "Please help as soon as possible!",
    "I rely on this for work and it is costing me money.",
    "I have already written twice and nobody answered.",
};
static const char *const relaxed[] = {
    "No rush, whenever you have time.",
    "Just letting you know.",
    "It is not a big deal but I wanted to report it.",
};
static const char *const closings[] = {"Thanks, {name}", "Regards, {name}", "Best, {name}",
                                       "Thank you.",     "Cheers, {name}",  ""};

static const char *const t_prompts[] = {
    "Triage this support ticket:\n\n{msg}",
    "Which team should handle the following customer message, and how urgent is it?\n{msg}",
    "Classify this ticket by team and priority.\nTicket: {msg}",
    "Customer message: \"{msg}\"\nRoute it to the right team.",
    "Read the ticket below and assign a team and a priority.\n\n{msg}",
};

static void ticket_example(struct gen *g)
{
    struct kv kv[16];
    size_t n = 0;
    const struct issue *is = &PICK(g, issues);
    kv_set(kv, &n, "order", "%ld", rnd(g, 10000, 99999));
    kv_set(kv, &n, "month", "%s", PICK(g, months));
    kv_set(kv, &n, "price", "%ld", rnd(g, 12, 99));
    kv_set(kv, &n, "plan", "%s", PICK(g, plans));
    kv_set(kv, &n, "days", "%ld", rnd(g, 5, 30));
    kv_set(kv, &n, "product", "%s", PICK(g, products));
    kv_set(kv, &n, "app", "%s", PICK(g, apps));
    kv_set(kv, &n, "feature", "%s", PICK(g, features));
    kv_set(kv, &n, "code", "%ld", rnd(g, 100, 999));
    kv_set(kv, &n, "name", "%s", PICK(g, people).name);

    int level = (int)rnd_below(g, 3); /* 0 low, 1 normal, 2 high */
    struct buf msg, q, a, sum;
    buf_init(&msg);
    buf_init(&q);
    buf_init(&a);
    buf_init(&sum);
    const char *greet = PICK(g, greetings);
    if (*greet)
        buf_printf(&msg, "%s%s", greet, chance(g, 0.5) ? " " : "\n");
    expand(&msg, is->text, kv, n);
    if (level == 2)
        buf_printf(&msg, " %s", PICK(g, urgent));
    else if (level == 0)
        buf_printf(&msg, " %s", PICK(g, relaxed));
    const char *close = PICK(g, closings);
    if (*close) {
        buf_puts(&msg, " ");
        expand(&msg, close, kv, n);
    }
    kv_set(kv, &n, "msg", "%s", msg.data);
    expand(&q, PICK(g, t_prompts), kv, n);

    static const char *const prio[] = {"Low", "Normal", "High"};
    static const char *const prio_l[] = {"low", "normal", "high"};
    expand(&sum, is->summary, kv, n);
    size_t style = rnd_below(g, 10);
    if (style < 6) {
        char s0[256];
        snprintf(s0, sizeof(s0), "%s", sum.data);
        capitalize(s0);
        buf_printf(&a, "Team: %s\nPriority: %s\nSummary: %s.", is->team, prio[level], s0);
    } else if (style < 9) {
        buf_printf(&a, "Route this to %s with %s priority: %s.", is->team, prio_l[level], sum.data);
    } else {
        buf_printf(&a, "%s, %s priority. In short, %s.", is->team, prio_l[level], sum.data);
    }
    emit(g, chance(g, 0.15) ? "You are a support triage assistant." : NULL, q.data, a.data);
    buf_free(&msg);
    buf_free(&q);
    buf_free(&a);
    buf_free(&sum);
}

int lm_finetune_corpus_write(const char *path, uint64_t seed, size_t n)
{
    struct gen g;
    if (!path)
        return -EINVAL;
    int rc = open_gen(&g, path, seed);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n; i++)
        ticket_example(&g);
    return close_gen(&g, path);
}
