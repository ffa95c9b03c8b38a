/* STAND-IN (tx2setup sim) for Caffe's command-line tool: reports its version, nothing else. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
  if (argc > 1 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-version") == 0)) {
    printf("caffe version %s\n", CAFFE_VERSION);
    return 0;
  }
  if (argc > 1 && strcmp(argv[1], "device_query") == 0) {
    fprintf(stderr, "F0000 00:00:00.000000 common.cpp:152] Check failed: error == cudaSuccess (100 vs. 0)  "
                    "no CUDA-capable device is detected (STAND-IN, tx2setup sim; built for arch %s)\n", CAFFE_CUDA_ARCH);
    return 1;
  }
  fprintf(stderr, "caffe: command line brew\nusage: caffe <command> <args>\n\n"
                  "commands:\n  train           train or finetune a model\n  test            score a model\n"
                  "  device_query    show GPU diagnostic information\n  time            benchmark model execution time\n\n"
                  "(STAND-IN, tx2setup sim: only --version works)\n");
  return 1;
}
