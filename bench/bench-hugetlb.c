#include <stdio.h>
int main(void) { puts("bench-hugetlb: not written yet"); return 0; }
