// SPDX-License-Identifier: GPL-2.0
/*
 * sutlp_cumulative.h - body of sutlp_cumulative_v<N>, Suture kernel-tier test atomic-replace (cumulative) livepatch.
 *
 * Included by sutlp_cumulative_v1.c and sutlp_cumulative_v2.c, which define SUTLP_VERSION; it
 * replaces loadavg_proc_show() (fs/proc/loadavg.c, the ->show of /proc/loadavg) with a function that
 * prints "SUTLP-CUMULATIVE-V<N>". `.replace = true`: when v2's transition completes the kernel disables
 * and frees v1 (and any other patch), and Suture then removes v1's module. Loading v1 again later is
 * the rollback ("re-adding an older livepatch is equivalent to downgrading").
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/livepatch.h>
#include <linux/seq_file.h>

#ifndef SUTLP_VERSION
#error "SUTLP_VERSION must be defined"
#endif
#define SUTLP_STR2(x) #x
#define SUTLP_STR(x) SUTLP_STR2(x)

static int sutlp_loadavg_show(struct seq_file *m, void *v)
{
	seq_printf(m, "SUTLP-CUMULATIVE-V%s\n", SUTLP_STR(SUTLP_VERSION));
	return 0;
}

static struct klp_func sutlp_cumulative_funcs[] = {
	{ .old_name = "loadavg_proc_show", .new_func = sutlp_loadavg_show, },
	{ }
};

static struct klp_object sutlp_cumulative_objs[] = {
	{ .name = NULL, .funcs = sutlp_cumulative_funcs, },
	{ }
};

static struct klp_patch sutlp_cumulative_patch = {
	.mod = THIS_MODULE,
	.objs = sutlp_cumulative_objs,
	.replace = true,
};

static int __init sutlp_cumulative_init(void)
{
	return klp_enable_patch(&sutlp_cumulative_patch);
}

static void __exit sutlp_cumulative_exit(void)
{
}

module_init(sutlp_cumulative_init);
module_exit(sutlp_cumulative_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Suture test atomic-replace livepatch (/proc/loadavg marker)");
MODULE_INFO(livepatch, "Y");
