{
  "targets": [
    {
      "target_name": "argonaut_relay",
      "sources": ["relay.cc"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
