/* The checks and vectors both BatchNorm fronts share (batchnorm_front.h). */
#include "batchnorm_front.h"

#include <string.h>

static int check_vector(const char *what, const lt_tensor *t, int64_t c, lt_error *err) {
    char a[160];
    if (t && (t->ndim != 1 || t->size[0] != c || !lt_is_contiguous(t)))
        return lt_fail(err, "%s must be a vector of %lld elements, got %s", what, (long long)c, lt_shape_str(t, a, sizeof a));
    return 0;
}

int lt_bn_check_vectors(const lt_batchnorm_args *a, int64_t C, lt_error *err) {
    return check_vector("weight", a->weight, C, err) || check_vector("bias", a->bias, C, err) ||
           check_vector("running_mean", a->running_mean, C, err) || check_vector("running_var", a->running_var, C, err);
}

int lt_bn_check_forward(const lt_batchnorm_args *a, int64_t C, lt_error *err) {
    char s[160];
    if (lt_bn_check_vectors(a, C, err)) return -1;
    if (a->p.training && lt_numel(a->input) / (C ? C : 1) <= 1)
        return lt_fail(err, "expected more than 1 value per channel when training, got input of size %s",
                       lt_shape_str(a->input, s, sizeof s));
    if (!a->p.training && (!a->running_mean || !a->running_var))
        return lt_fail(err, "evaluation needs running statistics (track_running_stats) or training mode");
    return 0;
}

int lt_bn_check_backward(const lt_batchnorm_args *a, int64_t C, lt_error *err) {
    return check_vector("weight", a->weight, C, err) || check_vector("bias", a->bias, C, err) ||
           check_vector("grad_weight", a->grad_weight, C, err) || check_vector("grad_bias", a->grad_bias, C, err) ||
           check_vector("saved mean", a->save_mean, C, err) || check_vector("saved invstd", a->save_invstd, C, err);
}

lt_bn_vectors lt_bn_vectors_of(const lt_batchnorm_args *a) {
    return (lt_bn_vectors){lt_ptr(a->weight), lt_ptr(a->bias), lt_ptr(a->save_mean), lt_ptr(a->save_invstd),
                           lt_ptr(a->running_mean), lt_ptr(a->running_var)};
}

int lt_bn_operands(const lt_batchnorm_args *a, const lt_tensor *x, const lt_tensor *g, lt_named o[LT_BN_OPERANDS]) {
    const lt_named all[LT_BN_OPERANDS] = {
        {"input", x},               {"grad_output", g},         {"weight", a->weight},
        {"bias", a->bias},          {"running_mean", a->running_mean}, {"running_var", a->running_var},
        {"output", a->output},      {"save_mean", a->save_mean}, {"save_invstd", a->save_invstd},
        {"grad_input", a->grad_input}, {"grad_weight", a->grad_weight}, {"grad_bias", a->grad_bias}};
    memcpy(o, all, sizeof all);
    return LT_BN_OPERANDS;
}
