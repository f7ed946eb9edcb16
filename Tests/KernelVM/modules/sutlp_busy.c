// SPDX-License-Identifier: GPL-2.0
/*
 * sutlp_busy - Suture kernel-tier test livepatch of a module function.
 *
 * Replaces sutlp_target_work() in module sutlp_target with a version that returns 1 at once. While
 * sutlp_target's `hold` parameter is true its kthread never leaves the old function, so the transition
 * stays open (transition=1, the kthread's patch_state 0): the stall, revert, wait and EBUSY scenarios.
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/livepatch.h>

static int sutlp_busy_work(void)
{
	return 1;
}

static struct klp_func sutlp_busy_funcs[] = {
	{ .old_name = "sutlp_target_work", .new_func = sutlp_busy_work, },
	{ }
};

static struct klp_object sutlp_busy_objs[] = {
	{ .name = "sutlp_target", .funcs = sutlp_busy_funcs, },
	{ }
};

static struct klp_patch sutlp_busy_patch = {
	.mod = THIS_MODULE,
	.objs = sutlp_busy_objs,
};

static int __init sutlp_busy_init(void)
{
	return klp_enable_patch(&sutlp_busy_patch);
}

static void __exit sutlp_busy_exit(void)
{
}

module_init(sutlp_busy_init);
module_exit(sutlp_busy_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Suture test livepatch whose transition can be held open");
MODULE_INFO(livepatch, "Y");
