# dustbox_inotify: the Linux inotify addon (inotify.c, Node-API only). Built by scripts/build-native.js
# (the package's install script) with the node-gyp that npm bundles; output build/Release/dustbox_inotify.node.
{
  "targets": [
    {
      "target_name": "dustbox_inotify",
      "sources": ["inotify.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"],
      "cflags!": ["-fno-exceptions"]
    }
  ]
}
