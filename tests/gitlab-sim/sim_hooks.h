/*
 * tests/gitlab-sim/sim_hooks.h
 *    Webhook events and their delivery: payloads as GitLab builds them (merge request events, group
 *    project events), GitLab's request headers, asynchronous delivery by libcurl worker threads, the
 *    consecutive-failure rule (4 => temporarily_disabled with backoff, 40 => disabled) and redelivery
 *    with the same Idempotency-Key.
 *
 * Design: firing an event (lock held) renders the payload once, appends one struct sim_delivery per
 *    matching hook in state PENDING and signals s->delivery_cv. Workers take the oldest pending
 *    delivery, copy what they need, unlock, POST, lock again and record the result (skipping it if the
 *    world was reset meanwhile: s->generation changed).
 * Ownership: deliveries live in s->deliveries; returned pointers are borrowed (lock held).
 */
#ifndef SIM_HOOKS_H
#define SIM_HOOKS_H

#include "sim_state.h"

/* Start/stop the delivery workers (call without the lock). */
void sim_hooks_start(struct sim *s, int n_workers);
void sim_hooks_stop(struct sim *s);

/* Fire events (lock held). Ids of the deliveries made are appended to ids_out when it is not NULL. */
void sim_hooks_fire_mr(struct sim *s, struct sim_mr *mr, const char *action, const char *oldrev,
                       struct json_object *ids_out);
void sim_hooks_fire_project(struct sim *s, struct sim_project *p, const char *event_name, struct json_object *ids_out);
/* Deliver an MR event to one hook regardless of its event flags (the API's "test" endpoint). */
struct sim_delivery *sim_hooks_fire_mr_to(struct sim *s, struct sim_hook *h, struct sim_mr *mr, const char *action);

/* For events built elsewhere (sim_notes_hook.c): the payload's "project" object (with its id or not), a merge
   request's hook attributes (as object_attributes of its MR event, without action), and the delivery of a rendered
   body to the project's hooks and the licensed group hooks above it that have `flag` on. */
struct json_object *sim_hooks_project_json(struct sim *s, const struct sim_project *p, bool with_id);
struct json_object *sim_hooks_mr_attrs(struct sim *s, struct sim_mr *mr);
void sim_hooks_fire_flagged(struct sim *s, struct sim_project *p, const char *flag, const char *event,
                            const char *event_name, const char *body, struct json_object *ids_out);

/* A Pipeline Hook event for pl (its current status) to hooks with pipeline_events. */
void sim_hooks_fire_pipeline(struct sim *s, struct sim_pipeline *pl, struct json_object *ids_out);
/* The push sample of project p (its default branch head) to one hook (the group hook test endpoint). */
struct sim_delivery *sim_hooks_fire_push_sample_to(struct sim *s, struct sim_hook *h, struct sim_project *p);
/* Wait (lock held) until delivery delivery_id is done, the world is reset or timeout_ms passed. */
void sim_hooks_wait(struct sim *s, int64_t delivery_id, int timeout_ms);

/* A new attempt of delivery d: same body, Idempotency-Key and event UUID, new webhook UUID. NULL if the
   hook is gone. */
struct sim_delivery *sim_hooks_redeliver(struct sim *s, struct sim_delivery *d);

struct sim_delivery *sim_delivery_by_id(struct sim *s, int64_t id);
struct json_object *sim_render_delivery(const struct sim_delivery *d, bool with_body);
size_t sim_deliveries_unfinished(const struct sim *s);

/* Set a hook's alert status by hand (control API); failures follow it. */
void sim_hook_set_alert(struct sim_hook *h, const char *alert_status, time_t disabled_until);

#endif
