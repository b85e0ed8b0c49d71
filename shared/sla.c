#include "sla.h"

long
sla_target(const struct config *cfg, const char *tier, int urgency, enum sla_kind kind)
{
	const struct tier_policy *t = config_tier(cfg, tier ? tier : "unknown");

	if (t == NULL)
		t = config_tier(cfg, "unknown");
	if (urgency < 1)
		urgency = 1;
	if (urgency > URGENCY_LEVELS)
		urgency = URGENCY_LEVELS;
	if (t == NULL)
		return 86400;
	return kind == SLA_FIRST_RESPONSE ? t->sla[urgency - 1].first : t->sla[urgency - 1].resolve;
}

/*
 * Around-the-clock arithmetic for now; business hours, holidays and the
 * per-urgency clock mode belong here too (issue 4), so that every caller
 * gets them at once.
 */
time_t
sla_deadline(const struct config *cfg, const char *tier, int urgency,
    enum sla_kind kind, time_t start)
{
	return start + (time_t)sla_target(cfg, tier, urgency, kind);
}
