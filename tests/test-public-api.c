#include <stdio.h>
int main(void) { puts("test-public-api: not written yet"); return 77; }
