/* records/realtime.c: subscriptions to a Record API's changes (Server-Sent Events). */
#include "records/records_internal.h"

#include "http/http.h"

void rec__subscribe(const rec_api *api, const struct http_request *req, struct http_response *res,
                    const rec_user *u)
{
    (void)api;
    (void)req;
    (void)u;
    http_response_send_error(res, 501, "subscriptions are not available");
}
