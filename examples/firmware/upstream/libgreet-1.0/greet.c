#include "greet.h"
const char *greet_message(void) { return "hello from libgreet"; }
