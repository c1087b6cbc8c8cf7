/* Image folders: root/<class>/.../<file>.png, classes in sorted order, files in torchvision's order
 * (directories sorted by path, the files of each sorted by name). */
#define _DEFAULT_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "dataset.h"
#include "../base/fileio.h"
#include "file_util.h"
#include "png_io.h"

#define MAX_DEPTH 32

typedef struct strvec {
    char **items;
    size_t n, cap;
} strvec;

static int strvec_push(strvec *v, char *s, lt_error *err) {
    if (!s) return lt_fail(err, "out of memory");
    if (v->n == v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 16;
        char **p = realloc(v->items, cap * sizeof *p);
        if (!p) {
            free(s);
            return lt_fail(err, "out of memory");
        }
        v->items = p;
        v->cap = cap;
    }
    v->items[v->n++] = s;
    return 0;
}

static void strvec_free(strvec *v) {
    for (size_t i = 0; i < v->n; i++) free(v->items[i]);
    free(v->items);
    v->items = NULL;
    v->n = v->cap = 0;
}

static int compare_strings(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static char *join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *s = malloc(a + b + 2);
    if (!s) return NULL;
    memcpy(s, dir, a);
    s[a] = '/';
    memcpy(s + a + 1, name, b + 1);
    return s;
}

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int has_png_extension(const char *name) {
    size_t n = strlen(name);
    return n > 4 && strcasecmp(name + n - 4, ".png") == 0;
}

/* The entries of dir (without . and ..), split into sub-folders and other entries, both sorted. */
static int list_dir(const char *dir, strvec *dirs, strvec *files, bool skip_hidden_dirs, lt_error *err) {
    char why[128];
    DIR *d = opendir(dir);
    if (!d) return lt_fail(err, "cannot open folder %s: %s", dir, lt_strerror(errno, why, sizeof why));
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char *path = join(dir, e->d_name);
        if (!path) { rc = lt_fail(err, "out of memory"); break; }
        if (is_dir(path)) {
            if (!dirs || (skip_hidden_dirs && e->d_name[0] == '.')) free(path);
            else rc = strvec_push(dirs, path, err);
        } else if (files) {
            rc = strvec_push(files, path, err);
        } else {
            free(path);
        }
    }
    closedir(d);
    if (dirs && dirs->n) qsort(dirs->items, dirs->n, sizeof(char *), compare_strings);
    if (files && files->n) qsort(files->items, files->n, sizeof(char *), compare_strings);
    return rc;
}

/* Every folder under (and including) dir, sorted by path: os.walk's order once sorted. */
static int collect_dirs(const char *dir, strvec *out, int depth, lt_error *err) {
    if (depth > MAX_DEPTH) return lt_fail(err, "%s: folders nest more than %d deep", dir, MAX_DEPTH);
    char *copy = strdup(dir);
    if (strvec_push(out, copy, err)) return -1;
    strvec subdirs = {0};
    int rc = list_dir(dir, &subdirs, NULL, false, err);
    for (size_t i = 0; rc == 0 && i < subdirs.n; i++) rc = collect_dirs(subdirs.items[i], out, depth + 1, err);
    strvec_free(&subdirs);
    return rc;
}

/* The .png files of one class folder, in order; other files are counted in *ignored. */
static int class_files(const char *class_dir, strvec *pngs, int64_t *ignored, lt_error *err) {
    strvec dirs = {0};
    int rc = collect_dirs(class_dir, &dirs, 0, err);
    if (rc == 0 && dirs.n) qsort(dirs.items, dirs.n, sizeof(char *), compare_strings);
    for (size_t i = 0; rc == 0 && i < dirs.n; i++) {
        strvec files = {0};
        rc = list_dir(dirs.items[i], NULL, &files, false, err);
        for (size_t k = 0; rc == 0 && k < files.n; k++) {
            const char *base = strrchr(files.items[k], '/') + 1;
            if (has_png_extension(base)) {
                rc = strvec_push(pngs, files.items[k], err);
                files.items[k] = NULL;
            } else {
                (*ignored)++;
            }
        }
        strvec_free(&files);
    }
    strvec_free(&dirs);
    return rc;
}

/* Checks one file: its header (or, with skip_bad, a full decode). Returns its size through h and w. */
static int check_file(const char *path, bool full, int *h, int *w, lt_error *err) {
    int c;
    if (!full) return lt_png_read_header(path, h, w, &c, err);
    lt_u8image img;
    if (lt_png_read_file(path, &img, err)) return -1;
    *h = img.height;
    *w = img.width;
    lt_u8image_free(&img);
    return 0;
}

void lt_folder_report_free(lt_folder_report *report) {
    for (int64_t i = 0; i < report->skipped; i++) free(report->messages[i]);
    free(report->messages);
    memset(report, 0, sizeof *report);
}

lt_source *lt_folder_load(const char *root, lt_folder_options opts, lt_folder_report *report, lt_error *err) {
    memset(report, 0, sizeof *report);
    if (opts.channels < 1 || opts.channels > 4) return lt_fail(err, "channels must be 1 to 4, got %d", opts.channels), NULL;
    if (opts.height < 0 || opts.width < 0 || (opts.height == 0) != (opts.width == 0) ||
        (int64_t)opts.height * opts.width > LT_IMAGE_MAX_PIXELS)
        return lt_fail(err, "image size %dx%d is out of range", opts.height, opts.width), NULL;
    if (!is_dir(root)) {
        char why[128];
        struct stat st;
        if (stat(root, &st) != 0) return lt_fail(err, "cannot open folder %s: %s", root, lt_strerror(errno, why, sizeof why)), NULL;
        return lt_fail(err, "%s is not a folder (expected one sub-folder per class)", root), NULL;
    }
    strvec classes = {0}, pngs = {0}, messages = {0};
    int32_t *targets = NULL;
    size_t targets_cap = 0;
    lt_source *src = NULL;
    if (list_dir(root, &classes, NULL, true, err)) goto done;
    if (classes.n == 0) {
        lt_fail(err, "%s has no class folders (expected one sub-folder per class, each holding .png images)", root);
        goto done;
    }
    if (classes.n > 1000000) {
        lt_fail(err, "%s has too many class folders", root);
        goto done;
    }
    for (size_t k = 0; k < classes.n; k++) {
        size_t before = pngs.n;
        int64_t ignored_before = report->ignored;
        if (class_files(classes.items[k], &pngs, &report->ignored, err)) goto done;
        if (pngs.n == before) {
            int64_t others = report->ignored - ignored_before;
            lt_fail(err, "class folder %s has no .png files%s", classes.items[k],
                    others ? " (only files of other types, which are not read)" : " (it is empty)");
            goto done;
        }
        if (pngs.n > targets_cap) {
            size_t cap = pngs.n * 2;
            int32_t *p = realloc(targets, cap * sizeof *p);
            if (!p) { lt_fail(err, "out of memory"); goto done; }
            targets = p;
            targets_cap = cap;
        }
        for (size_t i = before; i < pngs.n; i++) targets[i] = (int32_t)k;
    }

    /* check every file; keep the good ones */
    int height = opts.height, width = opts.width;
    const char *first = NULL;
    size_t kept = 0;
    for (size_t i = 0; i < pngs.n; i++) {
        int h, w;
        lt_error why;
        if (check_file(pngs.items[i], opts.skip_bad, &h, &w, &why)) {
            if (!opts.skip_bad) {
                *err = why;
                goto done;
            }
            if (strvec_push(&messages, strdup(why.msg), err)) goto done;
            free(pngs.items[i]);
            pngs.items[i] = NULL;
            continue;
        }
        if (!first) {
            first = pngs.items[i];
            if (opts.height == 0) height = h, width = w;
        } else if (opts.height == 0 && (h != height || w != width)) {
            lt_fail(err, "%s is %dx%d pixels but %s is %dx%d: give image_size to resize every image to one size",
                    pngs.items[i], h, w, first, height, width);
            goto done;
        }
        char *path = pngs.items[i];
        pngs.items[i] = NULL;
        pngs.items[kept] = path;
        targets[kept] = targets[i];
        kept++;
    }
    if (kept == 0) {
        lt_fail(err, "%s: none of the %zu .png files could be read (first: %s)", root, pngs.n,
                messages.n ? messages.items[0] : "?");
        goto done;
    }
    src = lt_source_new_folder((int64_t)kept, (int)classes.n, err);
    if (!src) goto done;
    src->channels = opts.channels;
    src->height = height;
    src->width = width;
    src->resize = opts.height > 0;
    for (size_t k = 0; k < classes.n; k++)
        if (lt_source_set_class_name(src, (int)k, strrchr(classes.items[k], '/') + 1, err)) {
            lt_source_release(src);
            src = NULL;
            goto done;
        }
    for (size_t i = 0; i < kept; i++) {
        src->paths[i] = pngs.items[i];
        src->targets[i] = targets[i];
        pngs.items[i] = NULL;
    }
    report->skipped = (int64_t)messages.n;
    report->messages = messages.items;
    messages.items = NULL;
    messages.n = 0;
done:
    for (size_t i = 0; i < pngs.n; i++) free(pngs.items[i]);  /* NULL for those handed over */
    free(pngs.items);
    strvec_free(&classes);
    strvec_free(&messages);
    free(targets);
    return src;
}
