// dustbox_inotify: a minimal Linux inotify binding for Node-API (C, node_api.h + uv.h only).
//
// JS API (see agent/open-watch.ts for the typed view):
//   const { Inotify, constants } = require('.../dustbox_inotify.node')
//   const ino = new Inotify((err, events) => { ... })  // inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
//   ino.addWatch(path: string | Buffer, mask: number) -> wd (throws Error with .code = 'ENOENT', ...)
//   ino.rmWatch(wd: number) -> boolean (false: not a watch any more, e.g. its directory was deleted)
//   ino.close()                                         // idempotent; no callback after it returns
//   ino.ref() / ino.unref()                             // keep / do not keep the event loop alive
//   events: Array<{ wd: number, mask: number, cookie: number, name: string | Buffer }>
//           name is '' for events on the watched object itself and a Buffer (the raw bytes) when
//           the kernel's name is not valid UTF-8.
//
// Events reach JS without blocking: a uv_poll_t on the non-blocking inotify fd wakes on the main
// loop when the fd is readable; each wake reads at most MAX_READS_PER_WAKE x READ_BUFFER_SIZE bytes
// (the poll is level-triggered, so the rest comes on the next turn) and calls the callback once with
// the batch. No thread-pool thread is used. IN_Q_OVERFLOW arrives as an event with wd = -1. A read
// or poll error is passed as `err` and stops the watcher's polling.
//
// Memory: the watcher struct belongs jointly to the JS wrapper (finalizer) and the uv handle (close
// callback); it is freed when both are done. Environment teardown (process or worker exit) closes the
// handle through an async cleanup hook.

#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#define _GNU_SOURCE
#include <node_api.h>
#include <uv.h>
#include <sys/inotify.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READ_BUFFER_SIZE 65536
#define MAX_READS_PER_WAKE 16
#define MAX_PATH_BYTES 4096

enum { H_OPEN = 1, H_CLOSING = 2, H_DONE = 3 };

typedef struct watcher {
  napi_env env;
  int fd;                  // -1 once closed
  uv_poll_t poll;
  int hstate;              // H_OPEN, H_CLOSING (uv_close called), H_DONE (the uv side let go)
  int wrapper_gone;        // the JS object was finalized: the JS side no longer uses this struct
  napi_ref callback;       // strong reference to the JS callback; NULL once closed
  napi_async_context actx; // NULL once closed
  napi_async_cleanup_hook_handle cleanup;       // registered while open
  napi_async_cleanup_hook_handle cleanup_done;  // set when teardown closes the handle
  _Alignas(struct inotify_event) char buf[READ_BUFFER_SIZE];
} watcher_t;

// ---- helpers ----

#define CHECK(env, call)                                                       \
  do {                                                                         \
    if ((call) != napi_ok) { throw_last(env); return NULL; }                   \
  } while (0)

static void throw_last (napi_env env) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) return;
  const napi_extended_error_info* info = NULL;
  napi_get_last_error_info(env, &info);
  const char* msg = (info != NULL && info->error_message != NULL) ? info->error_message : "Node-API call failed";
  napi_throw_error(env, "ERR_NAPI", msg);
}

static napi_value make_error (napi_env env, int errnum, const char* syscall) {
  const char* code = uv_err_name(-errnum);  // "ENOENT" ...; libuv errors are -errno on Unix
  char text[256];
  snprintf(text, sizeof text, "%s failed: %s (%s)", syscall, code, strerror(errnum));
  napi_value code_v, msg_v, err, errno_v, syscall_v;
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_v) != napi_ok) return NULL;
  if (napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg_v) != napi_ok) return NULL;
  if (napi_create_error(env, code_v, msg_v, &err) != napi_ok) return NULL;
  if (napi_create_int32(env, -errnum, &errno_v) == napi_ok) napi_set_named_property(env, err, "errno", errno_v);
  if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_v) == napi_ok) napi_set_named_property(env, err, "syscall", syscall_v);
  return err;
}

static void throw_errno (napi_env env, int errnum, const char* syscall) {
  napi_value err = make_error(env, errnum, syscall);
  if (err != NULL) napi_throw(env, err);
  else napi_throw_error(env, "ERR_NAPI", syscall);
}

/** Strict UTF-8 (no overlongs, no surrogates, nothing past U+10FFFF). */
static int valid_utf8 (const unsigned char* s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned char c = s[i];
    if (c < 0x80) { i++; continue; }
    size_t k;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) { k = 1; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { k = 2; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { k = 3; cp = c & 0x07; }
    else return 0;
    if (n - i - 1 < k) return 0;
    for (size_t j = 1; j <= k; j++) {
      unsigned char d = s[i + j];
      if ((d & 0xC0) != 0x80) return 0;
      cp = (cp << 6) | (d & 0x3F);
    }
    if (k == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) return 0;
    if (k == 3 && (cp < 0x10000 || cp > 0x10FFFF)) return 0;
    i += k + 1;
  }
  return 1;
}

static void maybe_free (watcher_t* w) {
  if (w->hstate == H_DONE && w->wrapper_gone) free(w);
}

static void on_handle_closed (uv_handle_t* h) {
  watcher_t* w = (watcher_t*)h->data;
  if (w->fd >= 0) { close(w->fd); w->fd = -1; }
  w->hstate = H_DONE;
  if (w->cleanup_done != NULL) {
    napi_async_cleanup_hook_handle done = w->cleanup_done;
    w->cleanup_done = NULL;
    napi_remove_async_cleanup_hook(done);  // tells Node the teardown hook has finished
  }
  maybe_free(w);
}

/** Stop polling and close the handle; the fd is closed in the close callback (after libuv let go). */
static void close_handle (watcher_t* w) {
  if (w->hstate != H_OPEN) return;
  w->hstate = H_CLOSING;
  uv_poll_stop(&w->poll);
  uv_close((uv_handle_t*)&w->poll, on_handle_closed);
}

/** Release what the JS side holds (main thread, env alive). */
static void release_js (watcher_t* w) {
  if (w->callback != NULL) { napi_delete_reference(w->env, w->callback); w->callback = NULL; }
  if (w->actx != NULL) { napi_async_destroy(w->env, w->actx); w->actx = NULL; }
  if (w->cleanup != NULL) { napi_remove_async_cleanup_hook(w->cleanup); w->cleanup = NULL; }
}

static void on_teardown (napi_async_cleanup_hook_handle handle, void* arg) {
  watcher_t* w = (watcher_t*)arg;
  w->cleanup = NULL;  // this hook is running: it must not be removed again except as `done`
  if (w->hstate == H_DONE) {
    napi_remove_async_cleanup_hook(handle);
  } else {
    w->cleanup_done = handle;
    close_handle(w);  // on_handle_closed removes `handle`
  }
}

static void finalize (napi_env env, void* data, void* hint) {
  (void)env; (void)hint;
  watcher_t* w = (watcher_t*)data;
  release_js(w);
  close_handle(w);
  w->wrapper_gone = 1;
  maybe_free(w);
}

// ---- events ----

static napi_value event_object (napi_env env, const struct inotify_event* ev, const char* name) {
  napi_value obj, v;
  if (napi_create_object(env, &obj) != napi_ok) return NULL;
  if (napi_create_int32(env, ev->wd, &v) != napi_ok || napi_set_named_property(env, obj, "wd", v) != napi_ok) return NULL;
  if (napi_create_uint32(env, ev->mask, &v) != napi_ok || napi_set_named_property(env, obj, "mask", v) != napi_ok) return NULL;
  if (napi_create_uint32(env, ev->cookie, &v) != napi_ok || napi_set_named_property(env, obj, "cookie", v) != napi_ok) return NULL;
  size_t n = ev->len > 0 ? strnlen(name, ev->len) : 0;
  if (valid_utf8((const unsigned char*)name, n)) {
    if (napi_create_string_utf8(env, name, n, &v) != napi_ok) return NULL;
  } else {
    void* copy = NULL;
    if (napi_create_buffer_copy(env, n, name, &copy, &v) != napi_ok) return NULL;
  }
  if (napi_set_named_property(env, obj, "name", v) != napi_ok) return NULL;
  return obj;
}

static void deliver (watcher_t* w, napi_value err, napi_value events) {
  napi_env env = w->env;
  napi_value fn, recv, argv[2], result;
  if (w->callback == NULL || napi_get_reference_value(env, w->callback, &fn) != napi_ok || fn == NULL) return;
  if (napi_get_global(env, &recv) != napi_ok) return;  // napi_make_callback needs an object receiver
  if (err == NULL && napi_get_null(env, &err) != napi_ok) return;
  argv[0] = err;
  argv[1] = events;
  napi_make_callback(env, w->actx, recv, fn, 2, argv, &result);
  // A throw in the callback has no JS caller to reach: report it as uncaught, like Node's own handles.
  bool pending = false;
  napi_value exc;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending &&
      napi_get_and_clear_last_exception(env, &exc) == napi_ok) {
    napi_fatal_exception(env, exc);
  }
}

static void on_readable (uv_poll_t* h, int status, int events_flags) {
  (void)events_flags;
  watcher_t* w = (watcher_t*)h->data;
  if (w->hstate != H_OPEN || w->callback == NULL) return;
  napi_env env = w->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value list = NULL, err = NULL;
  uint32_t count = 0;
  if (napi_create_array(env, &list) != napi_ok) goto out;
  if (status < 0) {
    err = make_error(env, -status, "uv_poll");
    uv_poll_stop(&w->poll);
  } else {
    for (int r = 0; r < MAX_READS_PER_WAKE; r++) {
      ssize_t n = read(w->fd, w->buf, sizeof w->buf);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        err = make_error(env, errno, "read");
        uv_poll_stop(&w->poll);
        break;
      }
      if (n == 0) break;
      size_t off = 0;
      while ((size_t)n - off >= sizeof(struct inotify_event)) {
        struct inotify_event ev;
        memcpy(&ev, w->buf + off, sizeof ev);
        size_t body = (size_t)n - off - sizeof ev;
        if (ev.len > body) break;  // never happens with a sane kernel; do not read past the buffer
        const char* name = w->buf + off + sizeof ev;
        napi_value obj = event_object(env, &ev, name);
        if (obj != NULL && napi_set_element(env, list, count, obj) == napi_ok) count++;
        off += sizeof ev + ev.len;
      }
      if ((size_t)n < sizeof w->buf / 2) break;  // the queue is most likely drained
    }
  }
  if (count > 0 || err != NULL) deliver(w, err, list);
out:
  napi_close_handle_scope(env, scope);
}

// ---- methods ----

static watcher_t* unwrap (napi_env env, napi_value self) {
  watcher_t* w = NULL;
  if (napi_unwrap(env, self, (void**)&w) != napi_ok || w == NULL) {
    napi_throw_type_error(env, "ERR_INVALID_THIS", "not an Inotify object");
    return NULL;
  }
  return w;
}

static napi_value js_new (napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], self, target;
  CHECK(env, napi_get_new_target(env, info, &target));
  if (target == NULL) { napi_throw_type_error(env, "ERR_CONSTRUCT_CALL_REQUIRED", "Inotify must be called with new"); return NULL; }
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, &self, NULL));
  napi_valuetype t = napi_undefined;
  if (argc >= 1) CHECK(env, napi_typeof(env, argv[0], &t));
  if (t != napi_function) { napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "the callback must be a function"); return NULL; }

  uv_loop_t* loop = NULL;
  CHECK(env, napi_get_uv_event_loop(env, &loop));
  watcher_t* w = (watcher_t*)calloc(1, sizeof *w);
  if (w == NULL) { napi_throw_error(env, "ENOMEM", "out of memory"); return NULL; }
  w->env = env;
  w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (w->fd < 0) { int e = errno; free(w); throw_errno(env, e, "inotify_init1"); return NULL; }
  int rc = uv_poll_init(loop, &w->poll, w->fd);
  if (rc != 0) { close(w->fd); free(w); throw_errno(env, -rc, "uv_poll_init"); return NULL; }
  w->poll.data = w;
  w->hstate = H_OPEN;
  napi_value name;
  if (napi_create_reference(env, argv[0], 1, &w->callback) != napi_ok ||
      napi_create_string_utf8(env, "dustbox:inotify", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, NULL, name, &w->actx) != napi_ok ||
      napi_add_async_cleanup_hook(env, on_teardown, w, &w->cleanup) != napi_ok ||
      napi_wrap(env, self, w, finalize, NULL, NULL) != napi_ok) {
    throw_last(env);
    release_js(w);
    w->wrapper_gone = 1;
    close_handle(w);  // frees w in the close callback
    return NULL;
  }
  rc = uv_poll_start(&w->poll, UV_READABLE, on_readable);
  if (rc != 0) {
    release_js(w);
    close_handle(w);  // the wrapper's finalizer frees w later
    throw_errno(env, -rc, "uv_poll_start");
    return NULL;
  }
  return self;
}

/** Copy a path argument (string or Buffer) into out[MAX_PATH_BYTES + 1]; 0 and a thrown error on bad input. */
static int get_path (napi_env env, napi_value v, char* out) {
  napi_valuetype t;
  bool is_buffer = false;
  if (napi_typeof(env, v, &t) != napi_ok) { throw_last(env); return 0; }
  size_t len = 0;
  if (t == napi_string) {
    if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) { throw_last(env); return 0; }
    if (len == 0 || len > MAX_PATH_BYTES) goto bad_len;
    if (napi_get_value_string_utf8(env, v, out, MAX_PATH_BYTES + 1, &len) != napi_ok) { throw_last(env); return 0; }
  } else if (napi_is_buffer(env, v, &is_buffer) == napi_ok && is_buffer) {
    void* data = NULL;
    if (napi_get_buffer_info(env, v, &data, &len) != napi_ok) { throw_last(env); return 0; }
    if (len == 0 || len > MAX_PATH_BYTES) goto bad_len;
    memcpy(out, data, len);
    out[len] = 0;
  } else {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "the path must be a string or a Buffer");
    return 0;
  }
  if (strlen(out) != len) { napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "the path contains a NUL byte"); return 0; }
  return 1;
bad_len:
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "the path must be 1..4096 bytes");
  return 0;
}

static napi_value js_add_watch (napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], self, out;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, &self, NULL));
  watcher_t* w = unwrap(env, self);
  if (w == NULL) return NULL;
  if (w->hstate != H_OPEN) { napi_throw_error(env, "ERR_CLOSED", "the inotify instance is closed"); return NULL; }
  if (argc < 2) { napi_throw_type_error(env, "ERR_MISSING_ARGS", "addWatch(path, mask)"); return NULL; }
  char path[MAX_PATH_BYTES + 1];
  if (!get_path(env, argv[0], path)) return NULL;
  napi_valuetype t;
  CHECK(env, napi_typeof(env, argv[1], &t));
  if (t != napi_number) { napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "the mask must be a number"); return NULL; }
  uint32_t mask = 0;
  CHECK(env, napi_get_value_uint32(env, argv[1], &mask));
  int wd = inotify_add_watch(w->fd, path, mask);
  if (wd < 0) { throw_errno(env, errno, "inotify_add_watch"); return NULL; }
  CHECK(env, napi_create_int32(env, wd, &out));
  return out;
}

static napi_value js_rm_watch (napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], self, out;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, &self, NULL));
  watcher_t* w = unwrap(env, self);
  if (w == NULL) return NULL;
  if (w->hstate != H_OPEN) { napi_throw_error(env, "ERR_CLOSED", "the inotify instance is closed"); return NULL; }
  napi_valuetype t = napi_undefined;
  if (argc >= 1) CHECK(env, napi_typeof(env, argv[0], &t));
  if (t != napi_number) { napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "the watch descriptor must be a number"); return NULL; }
  int32_t wd = 0;
  CHECK(env, napi_get_value_int32(env, argv[0], &wd));
  bool removed = true;
  if (inotify_rm_watch(w->fd, wd) != 0) {
    if (errno != EINVAL) { throw_errno(env, errno, "inotify_rm_watch"); return NULL; }
    removed = false;
  }
  CHECK(env, napi_get_boolean(env, removed, &out));
  return out;
}

static napi_value js_close (napi_env env, napi_callback_info info) {
  napi_value self;
  CHECK(env, napi_get_cb_info(env, info, NULL, NULL, &self, NULL));
  watcher_t* w = unwrap(env, self);
  if (w == NULL) return NULL;
  release_js(w);
  close_handle(w);
  return NULL;
}

static napi_value js_ref (napi_env env, napi_callback_info info) {
  napi_value self;
  CHECK(env, napi_get_cb_info(env, info, NULL, NULL, &self, NULL));
  watcher_t* w = unwrap(env, self);
  if (w != NULL && w->hstate == H_OPEN) uv_ref((uv_handle_t*)&w->poll);
  return NULL;
}

static napi_value js_unref (napi_env env, napi_callback_info info) {
  napi_value self;
  CHECK(env, napi_get_cb_info(env, info, NULL, NULL, &self, NULL));
  watcher_t* w = unwrap(env, self);
  if (w != NULL && w->hstate == H_OPEN) uv_unref((uv_handle_t*)&w->poll);
  return NULL;
}

// ---- module ----

static int set_u32 (napi_env env, napi_value obj, const char* key, uint32_t value) {
  napi_value v;
  return napi_create_uint32(env, value, &v) == napi_ok && napi_set_named_property(env, obj, key, v) == napi_ok;
}

NAPI_MODULE_INIT () {
  napi_property_descriptor methods[] = {
    { "addWatch", NULL, js_add_watch, NULL, NULL, NULL, napi_default, NULL },
    { "rmWatch", NULL, js_rm_watch, NULL, NULL, NULL, napi_default, NULL },
    { "close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL },
    { "ref", NULL, js_ref, NULL, NULL, NULL, napi_default, NULL },
    { "unref", NULL, js_unref, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_value cls, constants;
  CHECK(env, napi_define_class(env, "Inotify", NAPI_AUTO_LENGTH, js_new, NULL, sizeof methods / sizeof methods[0], methods, &cls));
  CHECK(env, napi_set_named_property(env, exports, "Inotify", cls));
  CHECK(env, napi_create_object(env, &constants));
  int ok = 1;
#define C(name) ok = ok && set_u32(env, constants, #name, name)
  C(IN_ACCESS); C(IN_MODIFY); C(IN_ATTRIB); C(IN_CLOSE_WRITE); C(IN_CLOSE_NOWRITE); C(IN_OPEN);
  C(IN_MOVED_FROM); C(IN_MOVED_TO); C(IN_CREATE); C(IN_DELETE); C(IN_DELETE_SELF); C(IN_MOVE_SELF);
  C(IN_UNMOUNT); C(IN_Q_OVERFLOW); C(IN_IGNORED); C(IN_ONLYDIR); C(IN_DONT_FOLLOW); C(IN_EXCL_UNLINK);
  C(IN_MASK_ADD); C(IN_ISDIR); C(IN_ONESHOT);
#ifdef IN_MASK_CREATE
  C(IN_MASK_CREATE);
#endif
#undef C
  ok = ok && set_u32(env, constants, "READ_BUFFER_SIZE", READ_BUFFER_SIZE);
  if (!ok) { throw_last(env); return NULL; }
  CHECK(env, napi_set_named_property(env, exports, "constants", constants));
  return exports;
}
