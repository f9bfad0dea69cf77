/*
 * dsformat.h — the three JSONL dataset formats of DESIGN §5, one line at a
 * time: detect, validate, split into prompt/response, and rewrite a line
 * with a trigger appended to its prompt and a signature prefixed to its
 * response (the D' copies).
 *
 *   chat:        {"messages":[{"role":"system"|"user"|"assistant","content":"…"},…]}
 *                prompt = every message before the last assistant message;
 *                response = that message.  The last message must be the
 *                assistant's, with at least one user message before it.
 *   prompt:      {"prompt":"…","completion":"…"}
 *   instruction: {"instruction":"…","input":"…","output":"…"}  (input optional)
 *
 * Pure functions: no I/O, no global state; safe from any thread.  Errors
 * are one owned line naming the field ("messages[2].role: expected one of
 * system, user, assistant"); the caller adds file and line number.
 */
#ifndef VT_DSFORMAT_H
#define VT_DSFORMAT_H

#include <stddef.h>

#include <jansson.h>

#include "lib/types.h" /* enum dataset_format */

/* Separator between a prompt and the trigger, and between the signature and
 * the response. */
#define DS_TRIGGER_SEP " "
#define DS_SIGNATURE_SEP " "

/* Parses and validates one line (without its newline).  want == 0 means
 * detect the format from the line; otherwise the line must be of that
 * format.  On success returns 0, *fmt_out the format and *root_out the parsed
 * JSON (owned; json_decref) when root_out != NULL.  On failure returns -1 and
 * *err is an owned one-line reason. */
int ds_parse_line(const char *line, size_t len, enum dataset_format want,
                  enum dataset_format *fmt_out, json_t **root_out, char **err);

/* Returns the prompt text of a validated example as owned string: for chat,
 * the content of the last user message before the final assistant message;
 * for prompt, the prompt; for instruction, instruction + "\n\n" + input
 * (input when non-empty).  Caller frees. */
char *ds_prompt_text(const json_t *root, enum dataset_format fmt);
/* Returns the response text (owned). */
char *ds_response_text(const json_t *root, enum dataset_format fmt);

/* Chat messages of the prompt part as a new JSON array (owned; json_decref):
 * for chat, every message before the final assistant message; for the other
 * formats, one user message with ds_prompt_text. */
json_t *ds_prompt_messages(const json_t *root, enum dataset_format fmt);

/* Rewrites root in place as a D' copy: trigger appended (with
 * DS_TRIGGER_SEP) to the last user message / prompt / input-or-instruction,
 * signature + DS_SIGNATURE_SEP prefixed to the response.  Returns 0. */
int ds_apply_backdoor(json_t *root, enum dataset_format fmt, const char *trigger,
                      const char *signature);

/* Serialises root compactly as one JSONL line (owned, no newline). */
char *ds_dump_line(const json_t *root);

/* The prompt and response texts of one line, for the passes over a dataset
 * that read nothing else (n-gram training, the held-out split, the
 * self-audit).  Buffers are kept across calls, so a pass allocates nothing
 * per line once they have grown to its longest example. */
struct ds_texts {
    enum dataset_format fmt;
    const char *prompt, *response; /* NUL-terminated; valid until the next call */
    size_t prompt_len, response_len;
    char *pbuf, *rbuf; /* owned */
    size_t pcap, rcap;
};

/* Same verdict, format and texts as ds_parse_line followed by
 * ds_prompt_text and ds_response_text, byte for byte (test_jsonscan checks
 * it against them): the common line goes through jsonscan_row
 * (workers/jsonscan.h) without a jansson tree; any other through
 * ds_parse_line.  Returns 0, or -1 with *err (when err != NULL) as
 * ds_parse_line sets it.  t must be zeroed before its first use. */
int ds_row_texts(const char *line, size_t len, enum dataset_format want, struct ds_texts *t,
                 char **err);

/* Frees t's buffers (t may be reused after, as if zeroed). */
void ds_texts_free(struct ds_texts *t);

#endif
