/* base/curl.c: libcurl's global initialisation, once per process, for every user of libcurl
 * (guests' fetch() and component downloads). */
#include "base/base.h"

#include <curl/curl.h>
#include <pthread.h>

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void tr_curl_global_init(void)
{
    pthread_once(&curl_once, curl_init_once);
}
