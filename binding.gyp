# Hyperscan native binding (native/hyperscan.cc). Built by native/build.js only when pkg-config finds libhs,
# so installs without Hyperscan still succeed and the detector falls back to RE2.
{
  "targets": [
    {
      "target_name": "hyperscan",
      "sources": ["native/hyperscan.cc"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!@(pkg-config --cflags-only-I libhs | sed -e 's/-I//g')"
      ],
      "libraries": ["<!@(pkg-config --libs libhs)"],
      # SWALLOW_UNTHROWABLE: when a worker thread is terminated mid-scan, the environment can no longer take a JS
      # exception; without this node-addon-api calls std::terminate and the whole process aborts.
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "MACOSX_DEPLOYMENT_TARGET": "11.0"
      }
    }
  ]
}
