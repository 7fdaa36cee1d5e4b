/*
 * tests/gitlab-sim/sim_control.h
 *    The control API under /__sim/ (outside /api/v4, no authentication): seed and reshape the world,
 *    create and push merge requests (which fire webhooks), script faults, read counters and deliveries.
 *    Every endpoint is documented with its JSON in tests/gitlab-sim/README.md.
 *
 * Design: handlers run with s->mu held, like the API's; waiting for deliveries uses s->delivery_cv.
 * Ownership: sim_control_add_token copies what it needs from the json it is given.
 */
#ifndef SIM_CONTROL_H
#define SIM_CONTROL_H

#include "sim_http.h"

/* Route and answer one /__sim/ request (lock held). */
void sim_control_handle(struct sim_req *r);

/* Create or replace a token from its control-API description. Returns NULL and sets *err (static string)
   when the description is invalid. */
struct sim_token *sim_control_add_token(struct sim *s, struct json_object *spec, const char **err);

/* What reset restores (tokens and seeding given on the command line); called with the lock held. */
void sim_control_set_startup(void (*fn)(struct sim *s));

/* Pop the next scripted step for this request, if any (lock held). Returns true and fills *step_out
   (owned by the caller: free body, put headers) when a script matched. */
bool sim_control_script_next(struct sim *s, const char *method, const char *path, const char *template_path,
                             struct sim_script_step *step_out);

#endif
