#include <stdio.h>
int main(void) { puts("bench-pmem: not written yet"); return 0; }
