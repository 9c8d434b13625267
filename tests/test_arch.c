/* test_arch.c — io/arch.c: layer lists as text. Every kind parses with its
 * defaults and emits canonically (emit -> parse -> emit is a fixed point),
 * residual blocks flatten to the documented names and sources, every error
 * names the layer (path with index, name, kind) and the key, and the
 * parameter count matches closed forms. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "check.h"

static eng_layer A[ARCH_MAX_LAYERS], B[ARCH_MAX_LAYERS];

/* Parse text as a model file would (allow_residual 0) or a job (1). */
static int parse(const char *text, int residual, eng_layer *out, int *n, at_err *e) {
    at_err_clear(e);
    return arch_parse_text(text, "t.yaml", residual, out, ARCH_MAX_LAYERS, n, e);
}

/* text parses; its emission parses to the same specs and emits the same
 * bytes. Returns the first emission (caller frees) or NULL. */
static char *fixed_point(const char *text, int residual, const char *what) {
    at_err e;
    int n = 0, n2 = 0;
    if (parse(text, residual, A, &n, &e)) {
        EXPECT(0, "%s: does not parse: %s", what, e.msg);
        return NULL;
    }
    char *t1 = arch_emit_specs(A, n, "");
    if (parse(t1, 0, B, &n2, &e)) {
        EXPECT(0, "%s: emitted text does not parse: %s\n%s", what, e.msg, t1);
        free(t1);
        return NULL;
    }
    EXPECT(n == n2 && memcmp(A, B, (size_t)n * sizeof *A) == 0,
           "%s: parse(emit(x)) != x (n %d vs %d)\n%s", what, n, n2, t1);
    char *t2 = arch_emit_specs(B, n2, "");
    EXPECT(strcmp(t1, t2) == 0, "%s: emit not stable:\n%s---\n%s", what, t1, t2);
    free(t2);
    return t1;
}

static const char *EVERY_KIND =
    "- {kind: linear, out_features: 8}\n"
    "- {kind: relu}\n"
    "- {kind: gelu}\n"
    "- {kind: gelu_tanh}\n"
    "- {kind: tanh}\n"
    "- {kind: sigmoid}\n"
    "- {kind: silu}\n"
    "- {kind: softplus}\n"
    "- {kind: conv2d, out_channels: 4, kernel: [3, 5], padding: 1}\n"
    "- {kind: maxpool2d, kernel: 2}\n"
    "- {kind: avgpool2d, kernel: [2, 3], stride: 1, count_include_pad: false}\n"
    "- {kind: global_avgpool}\n"
    "- {kind: batchnorm1d}\n"
    "- {kind: batchnorm2d, eps: 0.001, affine: false}\n"
    "- {kind: layernorm, eps: 1e-6}\n"
    "- {kind: embedding, num_embeddings: 100, embedding_dim: 16}\n"
    "- {kind: pos_embedding, max_len: 64}\n"
    "- {kind: attention, heads: 4, causal: true, bias: false}\n"
    "- {kind: dropout, p: 0.1}\n"
    "- {kind: flatten}\n"
    "- {kind: softmax}\n"
    "- {kind: log_softmax}\n"
    "- {kind: add, inputs: [layers.20, input]}\n"
    "- {kind: seq_mean, input: layers.17}\n";

static void test_every_kind(void) {
    char *t = fixed_point(EVERY_KIND, 0, "every kind");
    if (!t) return;
    int n = 0;
    at_err e;
    EXPECT(parse(EVERY_KIND, 0, A, &n, &e) == 0 && n == 24, "24 layers, got %d", n);
    /* every kind once, in enum order */
    for (int i = 0; i < n; i++)
        EXPECT(A[i].kind == (eng_layer_kind)(i + 1), "layer %d kind %d", i, (int)A[i].kind);
    EXPECT(A[0].out_features == 8 && A[0].bias == 1, "linear defaults bias true");
    EXPECT(!strcmp(A[0].name, "layers.0") && !strcmp(A[23].name, "layers.23"),
           "default names: %s %s", A[0].name, A[23].name);
    const eng_layer *c = &A[8];
    EXPECT(c->out_features == 4 && c->kernel[0] == 3 && c->kernel[1] == 5 &&
               c->stride[0] == 1 && c->stride[1] == 1 && c->padding[0] == 1 &&
               c->padding[1] == 1 && c->dilation[0] == 1 && c->dilation[1] == 1 && c->bias == 1,
           "conv2d fields");
    EXPECT(A[9].stride[0] == 2 && A[9].stride[1] == 2 && A[9].dilation[0] == 1,
           "maxpool stride defaults to the kernel");
    EXPECT(A[10].stride[0] == 1 && A[10].kernel[1] == 3 && A[10].count_include_pad == 0,
           "avgpool fields");
    EXPECT(A[12].eps == 1e-5 && A[12].affine == 1, "batchnorm1d defaults");
    EXPECT(A[13].eps == 0.001 && A[13].affine == 0, "batchnorm2d fields");
    EXPECT(A[14].eps == 1e-6 && A[14].affine == 1, "layernorm fields");
    EXPECT(A[15].num_embeddings == 100 && A[15].out_features == 16, "embedding fields");
    EXPECT(A[16].num_embeddings == 64, "pos_embedding max_len");
    EXPECT(A[17].heads == 4 && A[17].causal == 1 && A[17].bias == 0, "attention fields");
    EXPECT(A[18].p == 0.1, "dropout p");
    EXPECT(A[22].n_src == 2 && A[22].src[0] == 20 && A[22].src[1] == ENG_SRC_INPUT,
           "add sources %d %d", A[22].src[0], A[22].src[1]);
    EXPECT(A[23].n_src == 1 && A[23].src[0] == 17, "seq_mean reads layer 17");
    for (int i = 0; i < 22; i++) EXPECT(A[i].n_src == 0, "layer %d reads the previous", i);
    /* the canonical text, exactly */
    const char *want =
        "- {kind: linear, name: layers.0, out_features: 8, bias: true}\n"
        "- {kind: relu, name: layers.1}\n"
        "- {kind: gelu, name: layers.2}\n"
        "- {kind: gelu_tanh, name: layers.3}\n"
        "- {kind: tanh, name: layers.4}\n"
        "- {kind: sigmoid, name: layers.5}\n"
        "- {kind: silu, name: layers.6}\n"
        "- {kind: softplus, name: layers.7}\n"
        "- {kind: conv2d, name: layers.8, out_channels: 4, kernel: [3, 5], stride: 1, "
        "padding: 1, dilation: 1, bias: true}\n"
        "- {kind: maxpool2d, name: layers.9, kernel: 2, stride: 2, padding: 0, dilation: 1}\n"
        "- {kind: avgpool2d, name: layers.10, kernel: [2, 3], stride: 1, padding: 0, "
        "count_include_pad: false}\n"
        "- {kind: global_avgpool, name: layers.11}\n"
        "- {kind: batchnorm1d, name: layers.12, eps: 1.0e-05, affine: true}\n"
        "- {kind: batchnorm2d, name: layers.13, eps: 0.001, affine: false}\n"
        "- {kind: layernorm, name: layers.14, eps: 1.0e-06, affine: true}\n"
        "- {kind: embedding, name: layers.15, num_embeddings: 100, embedding_dim: 16}\n"
        "- {kind: pos_embedding, name: layers.16, max_len: 64}\n"
        "- {kind: attention, name: layers.17, heads: 4, causal: true, bias: false}\n"
        "- {kind: dropout, name: layers.18, p: 0.1}\n"
        "- {kind: flatten, name: layers.19}\n"
        "- {kind: softmax, name: layers.20}\n"
        "- {kind: log_softmax, name: layers.21}\n"
        "- {kind: add, name: layers.22, inputs: [layers.20, input]}\n"
        "- {kind: seq_mean, name: layers.23, input: layers.17}\n";
    EXPECT(strcmp(t, want) == 0, "canonical text:\n%s---want\n%s", t, want);
    free(t);

    /* each kind alone, and block YAML, give the same canonical line */
    for (int k = 1; k < ENG_LAYER_KIND_END; k++) {
        char one[256], *t1;
        const char *kn = eng_layer_kind_name((eng_layer_kind)k);
        int n1 = 0;
        EXPECT(kn != NULL, "kind %d has a name", k);
        if (!kn) continue;
        t1 = NULL;
        /* the k-th line of EVERY_KIND, on its own (add/seq_mean refer back) */
        if (k == ENG_LAYER_ADD || k == ENG_LAYER_SEQ_MEAN) continue;
        const char *line = EVERY_KIND;
        for (int i = 1; i < k; i++) line = strchr(line, '\n') + 1;
        size_t len = (size_t)(strchr(line, '\n') - line);
        memcpy(one, line, len);
        one[len] = '\0';
        t1 = fixed_point(one, 0, kn);
        EXPECT(t1 && parse(one, 0, A, &n1, &e) == 0 && n1 == 1 && (int)A[0].kind == k,
               "%s alone", kn);
        free(t1);
    }
    /* block style and flow style are the same layer */
    const char *block = "- kind: conv2d\n  name: c\n  out_channels: 2\n  kernel:\n    - 3\n"
                        "    - 3\n  stride: [2, 1]\n";
    t = fixed_point(block, 0, "block style");
    EXPECT(t && !strcmp(t, "- {kind: conv2d, name: c, out_channels: 2, kernel: 3, stride: "
                           "[2, 1], padding: 0, dilation: 1, bias: true}\n"),
           "block style text: %s", t ? t : "(none)");
    free(t);
}

/* Specs made in C with engine.h's zero defaults emit explicit values. */
static void test_emit_zero_defaults(void) {
    eng_layer s[3];
    memset(s, 0, sizeof s);
    s[0].kind = ENG_LAYER_CONV2D;
    s[0].out_features = 3;
    s[0].kernel[0] = s[0].kernel[1] = 5;
    s[1].kind = ENG_LAYER_MAXPOOL2D;
    s[1].kernel[0] = s[1].kernel[1] = 2;
    s[2].kind = ENG_LAYER_LAYERNORM;
    char *t = arch_emit_specs(s, 3, "  ");
    const char *want = "  - {kind: conv2d, name: layers.0, out_channels: 3, kernel: 5, stride: 1, "
                       "padding: 0, dilation: 1, bias: false}\n"
                       "  - {kind: maxpool2d, name: layers.1, kernel: 2, stride: 2, padding: 0, "
                       "dilation: 1}\n"
                       "  - {kind: layernorm, name: layers.2, eps: 1.0e-05, affine: false}\n";
    EXPECT(!strcmp(t, want), "zero defaults:\n%s---want\n%s", t, want);
    free(t);
}

/* Names that YAML would read as something else are quoted, and come back. */
static void test_names(void) {
    const char *text = "- {kind: relu, name: \"0\"}\n"
                       "- {kind: relu, name: 'true'}\n"
                       "- {kind: relu, name: \"-x\"}\n"
                       "- {kind: relu, name: features.1_a-b}\n"
                       "- {kind: add, inputs: [\"0\", 'true'], name: \"null\"}\n";
    char *t = fixed_point(text, 0, "odd names");
    const char *want = "- {kind: relu, name: \"0\"}\n"
                       "- {kind: relu, name: \"true\"}\n"
                       "- {kind: relu, name: \"-x\"}\n"
                       "- {kind: relu, name: features.1_a-b}\n"
                       "- {kind: add, name: \"null\", inputs: [\"0\", \"true\"]}\n";
    EXPECT(t && !strcmp(t, want), "quoted names:\n%s", t ? t : "(none)");
    free(t);
}

static void test_residual(void) {
    const char *text =
        "- {kind: conv2d, name: stem, out_channels: 8, kernel: 3, padding: 1}\n"
        "- kind: residual\n"
        "  name: block1\n"
        "  body:\n"
        "    - {kind: conv2d, out_channels: 8, kernel: 3, padding: 1}\n"
        "    - {kind: relu}\n"
        "    - {kind: conv2d, out_channels: 8, kernel: 3, padding: 1}\n"
        "- {kind: relu}\n"
        "- kind: residual\n"
        "  body:\n"
        "    - {kind: conv2d, out_channels: 16, kernel: 3, stride: 2, padding: 1}\n"
        "    - kind: residual\n"
        "      body: [{kind: relu}]\n"
        "  shortcut:\n"
        "    - {kind: conv2d, out_channels: 16, kernel: 1, stride: 2, bias: false}\n"
        "- {kind: global_avgpool}\n"
        "- {kind: linear, out_features: 10}\n";
    at_err e;
    int n = 0;
    EXPECT(parse(text, 0, A, &n, &e) != 0 && strstr(e.msg, "residual"),
           "model texts refuse residual: %s", e.msg);
    char *t = fixed_point(text, 1, "residual");
    if (!t) return;
    EXPECT(parse(text, 1, A, &n, &e) == 0, "parse: %s", e.msg);
    struct {
        const char *name;
        eng_layer_kind kind;
        int n_src, s0, s1;
    } want[] = {
        {"stem", ENG_LAYER_CONV2D, 0, 0, 0},
        {"block1.body.0", ENG_LAYER_CONV2D, 0, 0, 0},
        {"block1.body.1", ENG_LAYER_RELU, 0, 0, 0},
        {"block1.body.2", ENG_LAYER_CONV2D, 0, 0, 0},
        {"block1", ENG_LAYER_ADD, 2, 3, 0},                 /* body end + block input */
        {"layers.2", ENG_LAYER_RELU, 0, 0, 0},
        {"layers.3.body.0", ENG_LAYER_CONV2D, 0, 0, 0},     /* reads layers.2 = #5 */
        {"layers.3.body.1.body.0", ENG_LAYER_RELU, 0, 0, 0},
        {"layers.3.body.1", ENG_LAYER_ADD, 2, 7, 6},        /* nested identity block */
        {"layers.3.shortcut.0", ENG_LAYER_CONV2D, 1, 5, 0}, /* the block input */
        {"layers.3", ENG_LAYER_ADD, 2, 8, 9},
        {"layers.4", ENG_LAYER_GAP, 0, 0, 0},
        {"layers.5", ENG_LAYER_LINEAR, 0, 0, 0},
    };
    int nw = (int)(sizeof want / sizeof want[0]);
    EXPECT(n == nw, "flattened to %d layers, want %d", n, nw);
    for (int i = 0; i < n && i < nw; i++) {
        EXPECT(!strcmp(A[i].name, want[i].name) && A[i].kind == want[i].kind &&
                   A[i].n_src == want[i].n_src &&
                   (want[i].n_src < 1 || A[i].src[0] == want[i].s0) &&
                   (want[i].n_src < 2 || A[i].src[1] == want[i].s1),
               "layer %d: got %s kind %d n_src %d src %d %d; want %s n_src %d src %d %d", i,
               A[i].name, (int)A[i].kind, A[i].n_src, A[i].src[0], A[i].src[1], want[i].name,
               want[i].n_src, want[i].s0, want[i].s1);
    }
    EXPECT(A[9].stride[0] == 2 && A[9].bias == 0, "shortcut conv fields");
    EXPECT(strstr(t, "- {kind: add, name: block1, inputs: [block1.body.2, stem]}\n") &&
               strstr(t, "- {kind: conv2d, name: layers.3.shortcut.0, input: layers.2, "),
           "flat text names sources:\n%s", t);
    free(t);

    /* a block at the very start reads the model input; input: on a block */
    const char *t2 = "- kind: residual\n  name: r\n  body: [{kind: linear, out_features: 4}]\n"
                     "- {kind: relu, name: x}\n"
                     "- {kind: residual, name: r2, input: r, body: [{kind: tanh}],\n"
                     "   shortcut: []}\n";
    EXPECT(parse(t2, 1, A, &n, &e) == 0 && n == 5, "blocks: %s", e.msg);
    EXPECT(A[1].kind == ENG_LAYER_ADD && A[1].src[0] == 0 && A[1].src[1] == ENG_SRC_INPUT,
           "first block adds the model input: %d %d", A[1].src[0], A[1].src[1]);
    EXPECT(A[3].n_src == 1 && A[3].src[0] == 1, "block input: tanh reads r (#1), got %d/%d",
           A[3].n_src, A[3].src[0]);
    EXPECT(A[4].src[0] == 3 && A[4].src[1] == 1, "empty shortcut = identity");
    /* an explicit input naming the previous layer is the default */
    EXPECT(parse("- {kind: relu, name: a}\n- {kind: tanh, input: a}\n- {kind: tanh, input: "
                 "input}\n", 0, A, &n, &e) == 0 &&
               A[1].n_src == 0 && A[2].n_src == 1 && A[2].src[0] == ENG_SRC_INPUT,
           "input normalisation");
    EXPECT(parse("- {kind: relu, input: input}\n", 0, A, &n, &e) == 0 && A[0].n_src == 0,
           "layer 0 reading input is the default");
}

typedef struct {
    const char *text;
    int residual;
    const char *want[3]; /* substrings of the message */
} bad;

static void test_errors(void) {
    const bad cases[] = {
        {"- {kind: relu}\n- {kind: conv3d}\n", 0,
         {"t.yaml:2: layers[1].kind: expected one of linear, relu,", "got 'conv3d'"}},
        {"- {kind: relu}\n- {kind: conv3d}\n", 1, {"seq_mean, residual, got 'conv3d'"}},
        {"- {name: a}\n", 0, {"t.yaml:1: layers[0].kind: required key is missing"}},
        {"- {kind: linear}\n", 0,
         {"layers[0].out_features: layer 'layers.0' (linear): required key is missing"}},
        {"- {kind: relu}\n- {kind: conv2d, name: c1, out_channels: 4}\n", 0,
         {"t.yaml:2: layers[1].kernel: layer 'c1' (conv2d): required key is missing"}},
        {"- {kind: linear, out_features: 4, strides: 2}\n", 0,
         {"layers[0].strides: layer 'layers.0' (linear): unknown key (keys of linear: "
          "kind, name, input, out_features, bias)"}},
        {"- {kind: relu}\n- {kind: maxpool2d, name: p, kernel: 2, bias: true}\n", 0,
         {"t.yaml:2: layers[1].bias: layer 'p' (maxpool2d): not a key of this kind (keys "
          "of maxpool2d: kind, name, input, kernel, stride, padding, dilation)"}},
        {"- {kind: avgpool2d, kernel: 2, dilation: 2}\n", 0,
         {"layers[0].dilation: layer 'layers.0' (avgpool2d): not a key of this kind"}},
        {"- {kind: relu, inputs: [input, input]}\n", 0,
         {"layers[0].inputs: layer 'layers.0' (relu): not a key of this kind"}},
        {"- {kind: conv2d, name: c, out_channels: 4, kernel: [3, 3, 3]}\n", 0,
         {"layers[0].kernel: layer 'c' (conv2d): expected an integer or a list [h, w] of "
          "integers in 1..1048576, got a list of 3"}},
        {"- {kind: conv2d, name: c, out_channels: 4, kernel: 0}\n", 0,
         {"layers[0].kernel: layer 'c' (conv2d): expected", "got '0'"}},
        {"- {kind: conv2d, name: c, out_channels: 4, kernel: [3, x]}\n", 0,
         {"layers[0].kernel: layer 'c' (conv2d): expected", "got 'x'"}},
        {"- {kind: conv2d, name: c, out_channels: 4, kernel: 3, padding: -1}\n", 0,
         {"layers[0].padding: layer 'c' (conv2d): expected", "in 0..1048576, got '-1'"}},
        {"- {kind: linear, out_features: \"10\"}\n", 0,
         {"layers[0].out_features: layer 'layers.0' (linear): expected an integer in "
          "1..1073741824, got \"10\" (quoted, so a string)"}},
        {"- {kind: linear, out_features: 10.0}\n", 0, {"got '10.0'"}},
        {"- {kind: linear, out_features: 2000000000}\n", 0, {"1..1073741824, got '2000000000'"}},
        {"- {kind: linear, out_features: 10, bias: yes}\n", 0,
         {"layers[0].bias: layer 'layers.0' (linear): expected true or false, got 'yes'"}},
        {"- {kind: dropout, p: 1}\n", 0,
         {"layers[0].p: layer 'layers.0' (dropout): expected a number in [0, 1), got '1'"}},
        {"- {kind: layernorm, eps: 0}\n", 0, {"layers[0].eps:", "expected a number > 0"}},
        {"- {kind: layernorm, eps: .inf}\n", 0, {"layers[0].eps:", "got '.inf'"}},
        {"- {kind: relu, name: a}\n- {kind: relu, name: a}\n", 0,
         {"t.yaml:2: layers[1].name: layer 'a' (relu): duplicate layer name (also layer "
          "#0, layers[0], line 1)"}},
        {"- {kind: relu, name: layers.1}\n- {kind: relu}\n", 0,
         {"layers[1].name: layer 'layers.1' (relu): duplicate layer name"}},
        {"- {kind: relu, name: input}\n", 0, {"layers[0].name: 'input' is reserved"}},
        {"- {kind: relu, name: a/b}\n", 0,
         {"layers[0].name: expected a layer name of letters, digits, '_', '.' and '-', got "
          "'a/b'"}},
        {"- {kind: relu, name: \"\"}\n", 0, {"layers[0].name: expected a layer name"}},
        {"- {kind: relu}\n- {kind: tanh, input: c}\n- {kind: relu, name: c}\n", 0,
         {"t.yaml:2: layers[1].input: layer 'layers.1' (tanh): 'c' is layer #2, which "
          "comes later"}},
        {"- {kind: relu, name: a, input: a}\n", 0,
         {"layers[0].input: layer 'a' (relu): 'a' is this layer itself"}},
        {"- {kind: relu}\n- {kind: tanh, input: nope}\n", 0,
         {"t.yaml:2: layers[1].input: layer 'layers.1' (tanh): no layer is called 'nope'"}},
        {"- {kind: relu}\n- {kind: add, name: s}\n", 0,
         {"t.yaml:2: layers[1].inputs: layer 's' (add): required key is missing (add reads "
          "two layers: inputs: [a, b])"}},
        {"- {kind: relu}\n- {kind: add, name: s, inputs: [layers.0]}\n", 0,
         {"layers[1].inputs: layer 's' (add): expected a list of 2 layer names, got a "
          "list of 1"}},
        {"- {kind: relu}\n- {kind: add, name: s, inputs: layers.0}\n", 0,
         {"layers[1].inputs: layer 's' (add): expected a list of 2 layer names, got "
          "'layers.0'"}},
        {"- {kind: relu}\n- {kind: add, name: s, input: layers.0}\n", 0,
         {"layers[1].input: layer 's' (add): not a key of this kind (keys of add: kind, "
          "name, inputs)"}},
        {"- {kind: relu}\n- {kind: add, inputs: [layers.0, zz]}\n", 0,
         {"layers[1].inputs[1]: layer 'layers.1' (add): no layer is called 'zz'"}},
        {"- {kind: relu, kind: tanh}\n", 0, {"layers[0].kind: duplicate key"}},
        {"- relu\n", 0, {"t.yaml:1: layers[0]: expected a layer: a mapping with a kind, got "
                         "'relu'"}},
        {"{kind: relu}\n", 0, {"t.yaml:1: layers: expected a list of 1 to 512 layers, got a "
                               "mapping"}},
        {"[]\n", 0, {"layers: expected a list of 1 to 512 layers, got an empty list"}},
        {"", 0, {"t.yaml: no layers"}},
        {"- {kind: relu\n", 0, {"t.yaml:2:", "YAML syntax error"}},
        {"- {kind: residual, name: r}\n", 1,
         {"t.yaml:1: layers[0].body: layer 'r' (residual): required key is missing"}},
        {"- {kind: residual, body: []}\n", 1,
         {"layers[0].body: layer 'layers.0' (residual): expected a list of 1 or more "
          "layers, got an empty list"}},
        {"- {kind: residual, body: [{kind: relu}], shortcut: relu}\n", 1,
         {"layers[0].shortcut: layer 'layers.0' (residual): expected a list of layers"}},
        {"- {kind: residual, body: [{kind: relu}], out_features: 3}\n", 1,
         {"layers[0].out_features: layer 'layers.0' (residual): not a key of a residual "
          "block"}},
        {"- {kind: residual, input: later, body: [{kind: relu}]}\n- {kind: relu, name: "
         "later}\n", 1,
         {"layers[0].input: layer 'layers.0' (residual): 'later' is not an earlier layer"}},
        {"- kind: residual\n  name: b\n  body:\n    - {kind: relu}\n    - {kind: linear}\n", 1,
         {"t.yaml:5: layers[0].body[1].out_features: layer 'b.body.1' (linear): required "
          "key is missing"}},
        {"- {kind: relu, name: b}\n- {kind: residual, name: b, body: [{kind: relu}]}\n", 1,
         {"layers[1].name: layer 'b' (add): duplicate layer name (also layer #0"}},
        {"- {kind: relu, body: []}\n", 0,
         {"layers[0].body: layer 'layers.0' (relu): not a key of this kind"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        at_err e;
        int n = -1;
        int rc = parse(cases[i].text, cases[i].residual, A, &n, &e);
        EXPECT(rc == AT_EUSER && e.code == AT_EUSER && n == 0,
               "case %zu: rc %d n %d for\n%s", i, rc, n, cases[i].text);
        for (int k = 0; k < 3 && cases[i].want[k]; k++)
            EXPECT(strstr(e.msg, cases[i].want[k]) != NULL,
                   "case %zu:\n  got  %s\n  want %s", i, e.msg, cases[i].want[k]);
        EXPECT(strncmp(e.msg, "t.yaml", 6) == 0, "case %zu: names the source: %s", i, e.msg);
    }
    /* More layers than the cap, after flattening. */
    char *big = malloc(600 * 20 + 1);
    big[0] = '\0';
    for (int i = 0; i < 513; i++) strcat(big, "- {kind: relu}\n");
    at_err e;
    int n;
    EXPECT(parse(big, 0, A, &n, &e) == AT_EUSER &&
               strstr(e.msg, "layers[512]: layer 'layers.512' (relu): more than 512 layers"),
           "cap: %s", e.msg);
    free(big);
}

/* Closed-form parameter counts. */
/* Parameters by eng_model_build (shape inference, nothing allocated), or
 * -1 when the shapes do not chain. */
static int64_t param_count(const eng_layer *specs, int n, const int *shape, int nd) {
    eng_model m;
    at_err e = {0};
    if (eng_model_build(&m, specs, n, shape, nd, &e)) return -1;
    int64_t p = (int64_t)m.n_params;
    EXPECT(m.params == NULL, "eng_model_build allocated parameters");
    eng_model_free(&m);
    return p;
}

static void test_param_count(void) {
    at_err e;
    int n = 0;
    /* LeNet-ish on (1, 28, 28): conv 1->6 k5 (156), pool, conv 6->16 k5 (2416),
     * pool, flatten (16*4*4 = 256), linear 256->10 (2570), bn1d(10) 40 */
    const char *t = "- {kind: conv2d, out_channels: 6, kernel: 5}\n"
                    "- {kind: maxpool2d, kernel: 2}\n"
                    "- {kind: conv2d, out_channels: 16, kernel: 5}\n"
                    "- {kind: maxpool2d, kernel: 2}\n"
                    "- {kind: flatten}\n"
                    "- {kind: linear, out_features: 10}\n"
                    "- {kind: batchnorm1d}\n";
    EXPECT(parse(t, 0, A, &n, &e) == 0, "lenet: %s", e.msg);
    int64_t got = param_count(A, n, (int[]){1, 28, 28}, 3);
    EXPECT(got == 156 + 2416 + 2570 + 40, "lenet params %lld", (long long)got);
    /* 3 dims needed for a conv; a kernel bigger than the image does not fit */
    EXPECT(param_count(A, n, (int[]){784}, 1) == -1, "conv on (784)");
    EXPECT(param_count(A, n, (int[]){1, 4, 4}, 3) == -1, "5x5 kernel on 4x4");
    /* a transformer: embedding 50x8, pos 16x8, ln 16, attention 4*64+32, seq_mean,
     * linear 8->3 (27) */
    const char *tr = "- {kind: embedding, num_embeddings: 50, embedding_dim: 8}\n"
                     "- {kind: pos_embedding, max_len: 16}\n"
                     "- {kind: layernorm}\n"
                     "- {kind: attention, heads: 2}\n"
                     "- {kind: add, inputs: [layers.3, layers.1]}\n"
                     "- {kind: seq_mean}\n"
                     "- {kind: linear, out_features: 3}\n";
    EXPECT(parse(tr, 0, A, &n, &e) == 0, "transformer: %s", e.msg);
    got = param_count(A, n, (int[]){12}, 1);
    EXPECT(got == 400 + 128 + 16 + 288 + 27, "transformer params %lld", (long long)got);
    /* absurd sizes are counted without allocating anything */
    const char *huge = "- {kind: linear, out_features: 1073741824}\n"
                       "- {kind: linear, out_features: 1073741824}\n"
                       "- {kind: conv2d, out_channels: 1073741824, kernel: 1048576}\n";
    EXPECT(parse(huge, 0, A, &n, &e) == 0, "huge: %s", e.msg);
    got = param_count(A, 2, (int[]){1073741824}, 1);
    EXPECT(got > ((int64_t)1 << 60), "huge params %lld", (long long)got);
}

int main(void) {
    test_every_kind();
    test_emit_zero_defaults();
    test_names();
    test_residual();
    test_errors();
    test_param_count();
    return check_report("test_arch");
}
