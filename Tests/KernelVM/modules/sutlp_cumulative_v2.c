// SPDX-License-Identifier: GPL-2.0
/* sutlp_cumulative_v2 - atomic-replace test livepatch, version 2 (body in sutlp_cumulative.h). */
#define SUTLP_VERSION 2
#include "sutlp_cumulative.h"
