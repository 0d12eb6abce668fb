#include <stdio.h>
int main(void) { puts("test-parse: not written yet"); return 77; }
