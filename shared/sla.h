/*
 * sla - the one place deadlines are computed.
 *
 * The milter's X-Helpgate-SLA-Due header, the worker's acknowledgement and
 * the SLA timers all call sla_deadline(), so a client is never promised one
 * time and measured against another.  Targets come from the config's
 * per-tier table (SLA TIER Pn first=... resolve=...); an unknown tier name
 * uses the "unknown" tier's targets.
 */
#ifndef HG_SLA_H
#define HG_SLA_H

#include <time.h>

#include "config.h"

enum sla_kind { SLA_FIRST_RESPONSE, SLA_RESOLUTION };

/* The target duration in seconds for tier/urgency (urgency 1..4, clamped). */
long	sla_target(const struct config *cfg, const char *tier, int urgency, enum sla_kind kind);
/* The deadline for a clock that started at start. */
time_t	sla_deadline(const struct config *cfg, const char *tier, int urgency,
	    enum sla_kind kind, time_t start);

#endif
