#include <stdio.h>

int main(void)
{
	printf("== banner ==\n");
	return 0;
}
