/* tests/e2e/my_todos_checks.h: the my-todos examples' story over HTTP (my_todos_checks.c). */
#ifndef TRAIL_TESTS_E2E_MY_TODOS_CHECKS_H
#define TRAIL_TESTS_E2E_MY_TODOS_CHECKS_H

#include <stdbool.h>
#include <stddef.h>

/* Runs the story against trails serving the my-todos module (each request through the next of
 * ports in turn) whose data directory depot has the users a@example.org (password-a) and
 * b@example.org (password-b) and nothing else; `trail admin`/`trail user` commands run on depot.
 * rust: the module also has /admin/users. Leaves b deleted. */
void mt_check(const char *depot, const int *ports, size_t nports, bool rust);

#endif
