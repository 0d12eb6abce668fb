#include <stdio.h>
int main(void) { puts("test-caps: not written yet"); return 77; }
