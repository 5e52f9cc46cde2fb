#include <stdio.h>
#include <greet.h>
int main(void) { printf("%s\n", greet_message()); return 0; }
