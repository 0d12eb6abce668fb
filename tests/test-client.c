#include <stdio.h>
int main(void) { puts("test-client: not written yet"); return 77; }
