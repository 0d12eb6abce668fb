#include <stdio.h>
int main(void) { puts("bench-broker: not written yet"); return 0; }
