/* (To be written.) */
#include "internal.h"
