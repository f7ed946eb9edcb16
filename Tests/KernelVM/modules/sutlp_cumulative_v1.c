// SPDX-License-Identifier: GPL-2.0
/* sutlp_cumulative_v1 - atomic-replace test livepatch, version 1 (body in sutlp_cumulative.h). */
#define SUTLP_VERSION 1
#include "sutlp_cumulative.h"
