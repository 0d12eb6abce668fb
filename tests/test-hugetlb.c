#include <stdio.h>
int main(void) { puts("test-hugetlb: not written yet"); return 77; }
