#include "tg.h"
