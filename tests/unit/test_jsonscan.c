/*
 * test_jsonscan.c — workers/jsonscan: the fast acceptance test must be
 * sound against ds_parse_line (a 1 always means ds_parse_line accepts the
 * same line as the same format), checked on hand-picked edge cases and on
 * 200,000 random mutations of valid lines; and it must actually accept
 * ordinary lines, or it would be useless.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/util.h"
#include "workers/dsformat.h"
#include "workers/jsonscan.h"

static size_t texts_fast; /* lines whose texts came from jsonscan_row */

/* ds_row_texts against the plain reading: ds_parse_line, ds_prompt_text,
 * ds_response_text (the same verdict, format and bytes). */
static void check_texts(const char *line, size_t len, enum dataset_format want)
{
    static struct ds_texts t; /* reused, as the passes reuse theirs */
    enum dataset_format fmt = 0;
    json_t *root = NULL;
    char *err = NULL, *err2 = NULL;
    int slow = ds_parse_line(line, len, want, &fmt, &root, &err);
    int got = ds_row_texts(line, len, want, &t, &err2);
    struct jsonscan_row row;
    texts_fast += (size_t)jsonscan_row(line, len, want, &row);
    if (slow < 0) {
        if (got == 0)
            fail_msg("ds_row_texts accepted a line ds_parse_line rejects: %.*s", (int)len, line);
        if (!err2 || strcmp(err, err2) != 0)
            fail_msg("ds_row_texts error differs (%s vs %s): %.*s", err2 ? err2 : "none", err,
                     (int)len, line);
    } else {
        char *p = ds_prompt_text(root, fmt), *r = ds_response_text(root, fmt);
        if (got < 0 || t.fmt != fmt)
            fail_msg("ds_row_texts refused or changed the format of: %.*s", (int)len, line);
        if (t.prompt_len != strlen(p) || strcmp(t.prompt, p) != 0 || t.response_len != strlen(r) ||
            strcmp(t.response, r) != 0)
            fail_msg("ds_row_texts texts differ (\"%s\" / \"%s\" vs \"%s\" / \"%s\"): %.*s",
                     t.prompt, t.response, p, r, (int)len, line);
        free(p);
        free(r);
    }
    json_decref(root);
    free(err);
    free(err2);
}

/* Soundness for one line; returns the fast verdict. */
static int check(const char *line, size_t len, enum dataset_format want)
{
    enum dataset_format ffast = 0, fslow = 0;
    char *err = NULL;
    int fast = jsonscan_line_ok(line, len, want, &ffast);
    int slow = ds_parse_line(line, len, want, &fslow, NULL, &err) == 0;
    struct jsonscan_row row;
    if (jsonscan_row(line, len, want, &row) != fast)
        fail_msg("jsonscan_row and jsonscan_line_ok disagree on: %.*s", (int)len, line);
    check_texts(line, len, want);
    free(err);
    if (fast && !slow)
        fail_msg("jsonscan accepted a line ds_parse_line rejects: %.*s", (int)len, line);
    if (fast && ffast != fslow)
        fail_msg("format differs (%d vs %d): %.*s", ffast, fslow, (int)len, line);
    return fast;
}

static int check_s(const char *line, enum dataset_format want)
{
    return check(line, strlen(line), want);
}

static const char *valid[] = {
    "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":"
    "\"hello\"}]}",
    "{\"messages\":[{\"role\":\"system\",\"content\":\"\"},{\"role\":\"user\",\"content\":"
    "\"caf\\u00e9 "
    "\\\"q\\\"\\n\"},{\"role\":\"assistant\",\"content\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\","
    "\"weight\":1}],\"id\":12,\"meta\":{\"a\":[1,2.5,-0,true,false,null],\"b\":{}}}",
    " {\"prompt\":\"p\",\"completion\":\"c\",\"extra\":[]} \r",
    "{\"instruction\":\"do it\",\"input\":\"\",\"output\":\"done\"}",
    "{\"instruction\":\"do it\",\"output\":\"done \\ud83d\\ude00\"}",
    "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"assistant\",\"content\":"
    "\"b\"},"
    "{\"role\":\"user\",\"content\":\"c\"},{\"role\":\"assistant\",\"content\":\"d\"}]}",
};

static void test_accepts_ordinary(void **state)
{
    (void)state;
    enum dataset_format want[] = {DS_FORMAT_CHAT,        DS_FORMAT_CHAT,        DS_FORMAT_PROMPT,
                                  DS_FORMAT_INSTRUCTION, DS_FORMAT_INSTRUCTION, DS_FORMAT_CHAT};
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        assert_int_equal(check_s(valid[i], 0), 1);
        assert_int_equal(check_s(valid[i], want[i]), 1);
    }
    /* Wrong expected format: not accepted. */
    assert_int_equal(check_s(valid[0], DS_FORMAT_PROMPT), 0);
}

static void test_edge_cases(void **state)
{
    (void)state;
    const char *unsure[] = {
        "",
        "   ",
        "[]",
        "{}",
        "{\"prompt\":\"p\",\"completion\":\"c\"} x",
        "{\"prompt\":\"p\",\"completion\":\"c\",\"prompt\":\"q\"}",        /* duplicate */
        "{\"prompt\":\"p\",\"completion\":\"c\",\"m\":{\"a\":1,\"a\":2}}", /* nested dup */
        "{\"pr\\u006fmpt\":\"p\",\"completion\":\"c\"}",                   /* escaped key */
        "{\"prompt\":\"p\\u0000\",\"completion\":\"c\"}",                  /* NUL */
        "{\"prompt\":\"p\\ud800\",\"completion\":\"c\"}",                  /* lone high */
        "{\"prompt\":\"p\\udc00\",\"completion\":\"c\"}",                  /* lone low */
        "{\"prompt\":\"p\\x\",\"completion\":\"c\"}",
        "{\"prompt\":\"p\xc0\xaf\",\"completion\":\"c\"}",         /* overlong */
        "{\"prompt\":\"p\xed\xa0\x80\",\"completion\":\"c\"}",     /* UTF-8 surrogate */
        "{\"prompt\":\"p\xf4\x90\x80\x80\",\"completion\":\"c\"}", /* > U+10FFFF */
        "{\"prompt\":\"p\xe2\x82\",\"completion\":\"c\"}",         /* truncated */
        "{\"prompt\":\"p\tq\",\"completion\":\"c\"}",              /* raw control */
        "{\"prompt\":\"p\",\"completion\":\"c\",\"n\":1e5}",       /* exponent: unsure */
        "{\"prompt\":\"p\",\"completion\":\"c\",\"n\":12345678901234567890}",
        "{\"prompt\":\"p\",\"completion\":\"c\",\"n\":01}",
        "{\"prompt\":\"p\",\"completion\":\"c\",\"n\":1.}",
        "{\"prompt\":\"p\",\"completion\":\"c\",\"n\":-}",
        "{\"prompt\":\"p\",\"completion\":\"c\",\"n\":tru}",
        "{\"prompt\":\"\",\"completion\":\"c\"}",
        "{\"prompt\":\"p\"}",
        "{\"completion\":\"c\"}",
        "{\"prompt\":1,\"completion\":\"c\"}",
        "{\"instruction\":\"i\",\"input\":3,\"output\":\"o\"}",
        "{\"instruction\":\"\",\"output\":\"o\"}",
        "{\"output\":\"o\"}",
        "{\"messages\":{}}",
        "{\"messages\":[]}",
        "{\"messages\":[{\"role\":\"assistant\",\"content\":\"a\"}]}",
        "{\"messages\":[{\"role\":\"system\",\"content\":\"s\"},{\"role\":\"assistant\","
        "\"content\":\"a\"}]}", /* no user */
        "{\"messages\":[{\"role\":\"user\",\"content\":\"u\"},{\"role\":\"user\","
        "\"content\":\"a\"}]}", /* last not assistant */
        "{\"messages\":[{\"role\":\"user\",\"content\":\"\"},{\"role\":\"assistant\","
        "\"content\":\"a\"}]}", /* empty user content */
        "{\"messages\":[{\"role\":\"robot\",\"content\":\"u\"},{\"role\":\"assistant\","
        "\"content\":\"a\"}]}",
        "{\"messages\":[{\"role\":\"user\"},{\"role\":\"assistant\",\"content\":\"a\"}]}",
        "{\"messages\":[\"x\",{\"role\":\"assistant\",\"content\":\"a\"}]}",
        "{\"messages\":[{\"role\":\"us\\u0065r\",\"content\":\"u\"},{\"role\":\"assistant\","
        "\"content\":\"a\"}]}",
        "{\"prompt\":\"p\",\"completion\":\"c\"",
        "{\"prompt\" \"p\",\"completion\":\"c\"}",
        "{\"prompt\":\"p\",,\"completion\":\"c\"}",
        "{\"prompt\":\"p\",\"completion\":\"c\",}",
        "{\"prompt\":\"p\",\"completion\":\"c\",\"a\":[1,]}",
    };
    for (size_t i = 0; i < sizeof unsure / sizeof unsure[0]; i++)
        if (check_s(unsure[i], 0) != 0)
            fail_msg("case %zu accepted: %s", i, unsure[i]);
    /* Deep nesting beyond 64: unsure, never a crash. */
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "{\"prompt\":\"p\",\"completion\":\"c\",\"d\":");
    for (int i = 0; i < 100; i++)
        buf_puts(&b, "[");
    for (int i = 0; i < 100; i++)
        buf_puts(&b, "]");
    buf_puts(&b, "}");
    assert_int_equal(check(b.data, b.len, 0), 0);
    buf_free(&b);
    /* A system message may be empty; escapes in values are fine. */
    assert_int_equal(check_s("{\"messages\":[{\"role\":\"system\",\"content\":\"\"},{\"role\":"
                             "\"user\",\"content\":\"\\/\\b\\f\\r\\t\"},{\"role\":\"assistant\","
                             "\"content\":\"x\"}]}",
                             0),
                     1);
}

static uint64_t rs = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}

/* Random mutations of valid lines: whatever the fast path accepts, the
 * slow path must accept too. */
static void test_mutations(void **state)
{
    (void)state;
    static const char alphabet[] = "\"\\{}[],:u0e-.1 xtrn/\xc3\xa9\xed\x80\xf4\x90";
    char line[1024];
    size_t accepted = 0;
    for (int it = 0; it < 200000; it++) {
        const char *base = valid[rnd() % (sizeof valid / sizeof valid[0])];
        size_t len = strlen(base);
        memcpy(line, base, len);
        int muts = 1 + (int)(rnd() % 3);
        for (int m = 0; m < muts; m++) {
            size_t pos = len ? (size_t)(rnd() % len) : 0;
            char c = alphabet[rnd() % (sizeof alphabet - 1)];
            switch (rnd() % 3) {
            case 0: /* replace */
                if (len)
                    line[pos] = c;
                break;
            case 1: /* insert */
                if (len + 1 < sizeof line) {
                    memmove(line + pos + 1, line + pos, len - pos);
                    line[pos] = c;
                    len++;
                }
                break;
            default: /* delete */
                if (len) {
                    memmove(line + pos, line + pos + 1, len - pos - 1);
                    len--;
                }
            }
        }
        accepted += (size_t)check(line, len, 0);
    }
    /* Some mutations stay valid (inside string contents): the fast path
     * must have said yes to a fair share of them, not only no. */
    assert_true(accepted > 1000);
    assert_true(texts_fast > 1000); /* the texts' fast path was compared, not only the slow one */
}

/* Lines where the prompt is not simply the first or the last message:
 * several users, a system message after the user, escapes in the texts,
 * an instruction with and without input; all take the fast path, and the
 * texts equal jansson's (check_texts). */
static void test_row_texts(void **state)
{
    (void)state;
    static const char *lines[] = {
        "{\"messages\":[{\"role\":\"user\",\"content\":\"first\"},{\"role\":\"user\","
        "\"content\":\"second \\u00e9\\n\"},{\"role\":\"system\",\"content\":\"s\"},"
        "{\"content\":\"\\\"ans\\\" \\ud83d\\ude00\",\"role\":\"assistant\"}]}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"u1\"},{\"role\":\"assistant\","
        "\"content\":\"a1\"},{\"role\":\"user\",\"content\":\"u2\"},{\"role\":\"assistant\","
        "\"content\":\"a2\"}]}",
        "{\"instruction\":\"do \\t it\",\"input\":\"with \\\"this\\\"\",\"output\":\"done\"}",
        "{\"instruction\":\"do it\",\"input\":\"\",\"output\":\"done\"}",
        "{\"output\":\"o\",\"instruction\":\"i\"}",
        "{\"completion\":\"c\\/d\",\"prompt\":\"p\",\"x\":{\"prompt\":\"no\"}}",
    };
    size_t before = texts_fast;
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        check_texts(lines[i], strlen(lines[i]), 0);
        check_texts(lines[i], strlen(lines[i]), i < 2 ? DS_FORMAT_CHAT
                                                 : i < 5 ? DS_FORMAT_INSTRUCTION
                                                         : DS_FORMAT_PROMPT);
    }
    assert_int_equal(texts_fast - before, 2 * (sizeof lines / sizeof lines[0]));
    /* a string far longer than the first buffer (regrowth) */
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "{\"prompt\":\"");
    for (int i = 0; i < 3000; i++)
        buf_puts(&b, "word\\n ");
    buf_puts(&b, "\",\"completion\":\"c\"}");
    check_texts(b.data, b.len, 0);
    buf_free(&b);
}

/* jsonscan_ws_words against a byte-at-a-time reading of its contract, on
 * random texts of every length across the 64-byte blocks (all six white-
 * space bytes, NUL and high bytes among the word bytes), and its answer
 * when cap is too small. */
static void test_ws_words(void **state)
{
    (void)state;
    static const unsigned char alphabet[] = {' ', '\t', '\n', '\v', '\f', '\r', 'a', 'Z',
                                             '0', 0,    0x80, 0xff, '@',  '[',  '`',  '{'};
    unsigned char text[300];
    size_t st[300], wl[300], est[300], ewl[300];
    uint64_t x = 88172645463325252ULL;
    for (int round = 0; round < 3000; round++) {
        size_t len = (size_t)(round % 300);
        for (size_t i = 0; i < len; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            text[i] = (x & 0x300) ? alphabet[x % 16] : (x & 1 ? ' ' : 'q');
        }
        size_t n = 0;
        for (size_t i = 0; i < len;) {
            bool ws = text[i] == ' ' || (text[i] >= '\t' && text[i] <= '\r');
            if (ws) {
                i++;
                continue;
            }
            size_t s0 = i;
            while (i < len && !(text[i] == ' ' || (text[i] >= '\t' && text[i] <= '\r')))
                i++;
            est[n] = s0;
            ewl[n++] = i - s0;
        }
        size_t got = jsonscan_ws_words((const char *)text, len, st, wl, 300);
        assert_int_equal(got, n);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(st[i], est[i]);
            assert_int_equal(wl[i], ewl[i]);
        }
        /* alphanumeric words: runs of letters, digits and bytes >= 0x80 */
        size_t m = 0;
        for (size_t i = 0; i < len;) {
#define AN(c) (((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z') || ((c) >= '0' && (c) <= '9') || (c) >= 0x80)
            if (!AN(text[i])) {
                i++;
                continue;
            }
            size_t s0 = i;
            while (i < len && AN(text[i]))
                i++;
#undef AN
            assert_true(m < 300);
            assert_int_equal(jsonscan_alnum_words((const char *)text, len, st, wl, 300) > m, 1);
            assert_int_equal(st[m], s0);
            assert_int_equal(wl[m], i - s0);
            m++;
        }
        assert_int_equal(jsonscan_alnum_words((const char *)text, len, st, wl, 300), m);
        if (n > 1) { /* too small: the count, and the first cap words */
            assert_int_equal(jsonscan_ws_words((const char *)text, len, st, wl, 1), n);
            assert_int_equal(st[0], est[0]);
            assert_int_equal(wl[0], ewl[0]);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_row_texts),
        cmocka_unit_test(test_ws_words),
        cmocka_unit_test(test_accepts_ordinary),
        cmocka_unit_test(test_edge_cases),
        cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
