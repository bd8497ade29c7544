/*
 * chat.c - the chat templates of the models people test with, rendered byte for byte as
 * llama.cpp renders them (src/llama-chat.cpp: llm_chat_apply_template for one system + user
 * message with add_ass = true), and recognized from a GGUF's tokenizer.chat_template with the
 * substring heuristics of llm_chat_detect_template. This is not a Jinja engine.
 *
 * One deliberate difference: llama.cpp's legacy detector maps TinyLlama's and Zephyr's template
 * ("<|user|>" ... eos_token) to GLMEDGE, which drops the </s> and newlines those models were
 * trained with. We render it as the template itself does (and as llama.cpp does with --jinja):
 * "<|system|>\n{sys}</s>\n<|user|>\n{msg}</s>\n<|assistant|>\n".
 *
 * Depends on libc only.
 */
#include <ctype.h>
#include <string.h>

#include "lm.h"

static const struct {
    const char *name;
    int tmpl;
} names[] = {
    {"zephyr", LM_CHAT_ZEPHYR},
    {"llama2", LM_CHAT_LLAMA2},
    {"chatml", LM_CHAT_CHATML},
    {"llama2-sys-strip", LM_CHAT_LLAMA2_STRIP},
    {"llama2-nosys", LM_CHAT_LLAMA2_NOSYS},
    {"llama2-sys", LM_CHAT_LLAMA2}, /* llama.cpp's name for LM_CHAT_LLAMA2 */
};

#define N_NAMES (int)(sizeof names / sizeof names[0])

int lm_chat_from_name(const char *name)
{
    for (int i = 0; name && i < N_NAMES; i++) {
        if (strcmp(names[i].name, name) == 0) {
            return names[i].tmpl;
        }
    }
    return -1;
}

const char *lm_chat_name(int tmpl)
{
    for (int i = 0; i < N_NAMES; i++) {
        if (names[i].tmpl == tmpl) {
            return names[i].name;
        }
    }
    return NULL;
}

static bool has(const char *s, const char *sub)
{
    return strstr(s, sub) != NULL;
}

/* The [INST] family: llama.cpp's Mistral variants are not ours; the llama2 variants are told
 * apart by "content.strip()", "bos_token + '[INST]" and "<<SYS>>", in that order. */
static int detect_inst(const char *t)
{
    if (has(t, "[SYSTEM_PROMPT]") || has(t, "' [INST] ' + system_message") ||
        has(t, "[AVAILABLE_TOOLS]")) {
        return -1; /* mistral v7, v1, v3 */
    }
    if (has(t, "content.strip()")) {
        return LM_CHAT_LLAMA2_STRIP;
    }
    if (has(t, "bos_token + '[INST]") || has(t, "<<SYS>>")) {
        return LM_CHAT_LLAMA2; /* llama2-sys-bos renders one exchange like llama2-sys */
    }
    return LM_CHAT_LLAMA2_NOSYS;
}

int lm_chat_detect(const char *t)
{
    if (!t) {
        return -1;
    }
    int named = lm_chat_from_name(t);
    if (named >= 0) {
        return named;
    }
    if (has(t, "<|im_start|>")) {
        /* phi-4 (<|im_sep|>) and SmolVLM (<end_of_utterance>) are not ChatML */
        return has(t, "<|im_sep|>") || has(t, "<end_of_utterance>") ? -1 : LM_CHAT_CHATML;
    }
    if (strncmp(t, "mistral", 7) == 0 || has(t, "[INST]")) {
        return detect_inst(t);
    }
    if (has(t, "<|assistant|>") && has(t, "<|end|>")) {
        return -1; /* phi-3 */
    }
    if (has(t, "[gMASK]<sop>")) {
        return -1; /* chatglm4 */
    }
    if (has(t, "<|assistant|>") && has(t, "<|user|>")) {
        /* llama.cpp: "</s>" -> falcon3, else glmedge; TinyLlama/Zephyr use eos_token */
        return !has(t, "</s>") && has(t, "eos_token") ? LM_CHAT_ZEPHYR : -1;
    }
    return -1; /* includes llama.cpp's "zephyr" (<|user|> + <|endoftext|>, StableLM) */
}

/* Appends what fits of s to (buf, cap) at *n and counts all of it. */
static void put(char *buf, size_t cap, size_t *n, const char *s, size_t len)
{
    if (*n < cap) {
        size_t room = cap - *n;
        memcpy(buf + *n, s, len < room ? len : room);
    }
    *n += len;
}

static void puts_(char *buf, size_t cap, size_t *n, const char *s)
{
    put(buf, cap, n, s, strlen(s));
}

/* llama-chat.cpp's trim(): isspace on both ends. */
static void put_trimmed(char *buf, size_t cap, size_t *n, const char *s)
{
    size_t b = 0, e = strlen(s);
    while (b < e && isspace((unsigned char)s[b])) {
        b++;
    }
    while (e > b && isspace((unsigned char)s[e - 1])) {
        e--;
    }
    put(buf, cap, n, s + b, e - b);
}

/* LLM_CHAT_TEMPLATE_LLAMA_2*: the text starts "[INST] " (no BOS: "skip BOS at the
 * beginning"); a system message is wrapped in <<SYS>> unless the variant lacks support. */
static void render_llama2(int tmpl, const char *sys, const char *user, char *buf, size_t cap,
                          size_t *n)
{
    void (*content)(char *, size_t, size_t *, const char *) =
        tmpl == LM_CHAT_LLAMA2_STRIP ? put_trimmed : puts_;
    puts_(buf, cap, n, "[INST] ");
    if (sys && tmpl == LM_CHAT_LLAMA2_NOSYS) {
        content(buf, cap, n, sys);
        puts_(buf, cap, n, "\n");
    } else if (sys) {
        puts_(buf, cap, n, "<<SYS>>\n");
        content(buf, cap, n, sys);
        puts_(buf, cap, n, "\n<</SYS>>\n\n");
    }
    content(buf, cap, n, user);
    puts_(buf, cap, n, " [/INST]");
}

int64_t lm_chat_render(int tmpl, const char *system, const char *user, char *buf, size_t cap)
{
    size_t n = 0;
    if (!user || !lm_chat_name(tmpl) || (!buf && cap > 0)) {
        return LM_EINVAL;
    }
    if (tmpl == LM_CHAT_ZEPHYR) {
        if (system) {
            puts_(buf, cap, &n, "<|system|>\n");
            puts_(buf, cap, &n, system);
            puts_(buf, cap, &n, "</s>\n");
        }
        puts_(buf, cap, &n, "<|user|>\n");
        puts_(buf, cap, &n, user);
        puts_(buf, cap, &n, "</s>\n<|assistant|>\n");
    } else if (tmpl == LM_CHAT_CHATML) {
        if (system) {
            puts_(buf, cap, &n, "<|im_start|>system\n");
            puts_(buf, cap, &n, system);
            puts_(buf, cap, &n, "<|im_end|>\n");
        }
        puts_(buf, cap, &n, "<|im_start|>user\n");
        puts_(buf, cap, &n, user);
        puts_(buf, cap, &n, "<|im_end|>\n<|im_start|>assistant\n");
    } else {
        render_llama2(tmpl, system, user, buf, cap, &n);
    }
    if (n < cap) {
        buf[n] = '\0';
    }
    return (int64_t)n;
}
