/*
 * test_chat.c - chat templates: each rendering byte for byte against what llama.cpp produces
 * (llm_chat_apply_template in src/llama-chat.cpp, whose test-chat-template.cpp expectations
 * start with exactly these strings for the conversation "You are a helpful assistant" / "Hello"),
 * detection on real Jinja templates (short excerpts of the published ones), names, and errors.
 */
#include <check.h>
#include <string.h>

#include "lm.h"

#define SYS "You are a helpful assistant"

static void expect_render(int tmpl, const char *sys, const char *user, const char *want)
{
    char buf[1024];
    memset(buf, 'Z', sizeof buf);
    int64_t n = lm_chat_render(tmpl, sys, user, buf, sizeof buf);
    ck_assert_int_eq(n, (int64_t)strlen(want));
    ck_assert_str_eq(buf, want);
}

START_TEST(test_chat_render_zephyr)
{
    expect_render(LM_CHAT_ZEPHYR, SYS, "Hello",
                  "<|system|>\nYou are a helpful assistant</s>\n<|user|>\nHello</s>\n"
                  "<|assistant|>\n");
    expect_render(LM_CHAT_ZEPHYR, NULL, "Hello", "<|user|>\nHello</s>\n<|assistant|>\n");
}
END_TEST

START_TEST(test_chat_render_llama2)
{
    /* llama-2 variants: no BOS text (the tokenizer adds it), "[INST] " first */
    expect_render(LM_CHAT_LLAMA2, SYS, "Hello",
                  "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST]");
    expect_render(LM_CHAT_LLAMA2, NULL, "Hello", "[INST] Hello [/INST]");
    expect_render(LM_CHAT_LLAMA2, SYS, "  Hello  ",
                  "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\n  Hello   [/INST]");
    expect_render(LM_CHAT_LLAMA2_STRIP, " " SYS "\n", "  Hello  ",
                  "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST]");
    expect_render(LM_CHAT_LLAMA2_NOSYS, SYS, "Hello",
                  "[INST] You are a helpful assistant\nHello [/INST]");
    expect_render(LM_CHAT_LLAMA2_NOSYS, NULL, "Hello", "[INST] Hello [/INST]");
}
END_TEST

START_TEST(test_chat_render_chatml)
{
    expect_render(LM_CHAT_CHATML, SYS, "Hello",
                  "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n"
                  "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n");
    expect_render(LM_CHAT_CHATML, NULL, "Hello",
                  "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n");
    expect_render(LM_CHAT_CHATML, "", "",
                  "<|im_start|>system\n<|im_end|>\n<|im_start|>user\n<|im_end|>\n"
                  "<|im_start|>assistant\n");
}
END_TEST

/* Real templates (tokenizer.chat_template), shortened where the heuristics do not look. */
static const char tinyllama[] =
    "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + "
    "message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' "
    "+ message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ "
    "'<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and "
    "add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}";
static const char llama2_chat[] =
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set "
    "system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set "
    "system_message = false %}{% endif %}{% for message in loop_messages %}{% if loop.index0 == 0 "
    "and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + "
    "'\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% "
    "endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' "
    "[/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + "
    "eos_token }}{% endif %}{% endfor %}";
static const char fusionnet[] = /* llama2-sys-bos in llama.cpp's tests */
    "{%- for idx in range(0, messages|length) -%}\n{%- if messages[idx]['role'] == 'user' -%}\n{%- "
    "if idx > 1 -%}\n{{- bos_token + '[INST] ' + messages[idx]['content'] + ' [/INST]' -}}\n{%- "
    "else -%}\n{{- messages[idx]['content'] + ' [/INST]' -}}\n{%- endif -%}\n{% elif "
    "messages[idx]['role'] == 'system' %}\n{{- '[INST] <<SYS>>\\n' + messages[idx]['content'] + "
    "'\\n<</SYS>>\\n\\n' -}}\n{% endif %}\n{% endfor %}";
static const char mistral_v01[] =
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + "
    "message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ "
    "message['content'] + eos_token}}{% endif %}{% endfor %}";
static const char chatml[] =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|im_start|>assistant\\n' }}{% endif %}";

START_TEST(test_chat_detect_real_templates)
{
    ck_assert_int_eq(lm_chat_detect(tinyllama), LM_CHAT_ZEPHYR);
    ck_assert_int_eq(lm_chat_detect(llama2_chat), LM_CHAT_LLAMA2_STRIP);
    ck_assert_int_eq(lm_chat_detect(fusionnet), LM_CHAT_LLAMA2);
    ck_assert_int_eq(lm_chat_detect(mistral_v01), LM_CHAT_LLAMA2_NOSYS);
    ck_assert_int_eq(lm_chat_detect(chatml), LM_CHAT_CHATML);
    ck_assert_int_eq(lm_chat_detect("chatml"), LM_CHAT_CHATML); /* a name is accepted too */
    ck_assert_int_eq(lm_chat_detect("llama2-sys"), LM_CHAT_LLAMA2);
}
END_TEST

/* Templates llama.cpp knows but renders differently from ours: not detected as ours. */
START_TEST(test_chat_detect_others_are_unknown)
{
    static const char *const others[] = {
        "{% for m in messages %}{{'<|im_start|>' + m['role'] + '<|im_sep|>'}}{% endfor %}", /* phi4
                                                                                             */
        "{{ bos_token }}{% for m in messages %}{{'<|user|>\\n' + m['content'] + '<|end|>\\n' + "
        "'<|assistant|>\\n'}}{% endfor %}", /* phi-3 */
        "{% for m in messages %}{{'<|user|>\\n' + m['content'] + '<|endoftext|>'}}{% endfor %}",
        "{{ '<|system|>\\n' }}{{ '<|user|>\\n' }}{{ '<|assistant|>\\n' }}{{ '</s>' }}", /* falcon3
                                                                                         */
        "{% for item in messages %}<|{{ item['role'] }}|>\\n{{ item['content'] }}{% endfor "
        "%}<|user|><|assistant|>", /* glmedge */
        "{{ bos_token }}{% for m in messages %}{{ '[SYSTEM_PROMPT] ' }}{{ '[INST] ' }}{% endfor %}",
        "{{'<start_of_turn>' + role + '\\n'}}", /* gemma */
        "",
    };
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        ck_assert_msg(lm_chat_detect(others[i]) == -1, "template %zu detected", i);
    }
    ck_assert_int_eq(lm_chat_detect(NULL), -1);
}
END_TEST

START_TEST(test_chat_names)
{
    for (int t = 0; t < LM_CHAT_TMPL_COUNT; t++) {
        ck_assert_ptr_nonnull(lm_chat_name(t));
        ck_assert_int_eq(lm_chat_from_name(lm_chat_name(t)), t);
    }
    ck_assert_str_eq(lm_chat_name(LM_CHAT_ZEPHYR), "zephyr");
    ck_assert_str_eq(lm_chat_name(LM_CHAT_LLAMA2), "llama2");
    ck_assert_str_eq(lm_chat_name(LM_CHAT_CHATML), "chatml");
    ck_assert_int_eq(lm_chat_from_name("llama2-sys"), LM_CHAT_LLAMA2);
}
END_TEST

START_TEST(test_chat_errors)
{
    char buf[16];
    ck_assert_int_eq(lm_chat_from_name("vicuna"), -1);
    ck_assert_int_eq(lm_chat_from_name(NULL), -1);
    ck_assert_ptr_null(lm_chat_name(-1));
    ck_assert_ptr_null(lm_chat_name(LM_CHAT_TMPL_COUNT));
    ck_assert_int_eq(lm_chat_render(LM_CHAT_TMPL_COUNT, NULL, "hi", buf, sizeof buf), LM_EINVAL);
    ck_assert_int_eq(lm_chat_render(-1, NULL, "hi", buf, sizeof buf), LM_EINVAL);
    ck_assert_int_eq(lm_chat_render(LM_CHAT_CHATML, NULL, NULL, buf, sizeof buf), LM_EINVAL);
    ck_assert_int_eq(lm_chat_render(LM_CHAT_CHATML, NULL, "hi", NULL, 4), LM_EINVAL);
    /* cap too small: the full length, the first cap bytes, no NUL */
    const char *full = "<|user|>\nhi</s>\n<|assistant|>\n";
    memset(buf, 'Z', sizeof buf);
    ck_assert_int_eq(lm_chat_render(LM_CHAT_ZEPHYR, NULL, "hi", buf, 10), (int64_t)strlen(full));
    ck_assert(memcmp(buf, full, 10) == 0);
    ck_assert_int_eq(buf[10], 'Z');
    ck_assert_int_eq(lm_chat_render(LM_CHAT_ZEPHYR, NULL, "hi", NULL, 0), (int64_t)strlen(full));
}
END_TEST

Suite *chat_suite(void); /* called by check_main.c */
Suite *chat_suite(void)
{
    Suite *s = suite_create("chat");
    TCase *core = tcase_create("core");
    tcase_add_test(core, test_chat_render_zephyr);
    tcase_add_test(core, test_chat_render_llama2);
    tcase_add_test(core, test_chat_render_chatml);
    tcase_add_test(core, test_chat_detect_real_templates);
    tcase_add_test(core, test_chat_detect_others_are_unknown);
    tcase_add_test(core, test_chat_names);
    suite_add_tcase(s, core);
    TCase *errors = tcase_create("errors");
    tcase_add_test(errors, test_chat_errors);
    suite_add_tcase(s, errors);
    return s;
}
