// epoll and eventfd for the server's event loops: Swift's Glibc module does
// not export <sys/epoll.h> or <sys/eventfd.h>.
#ifndef CEPOLL_H
#define CEPOLL_H

#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

static const uint32_t vd_epollin = EPOLLIN;
static const uint32_t vd_epollout = EPOLLOUT;
static const uint32_t vd_epollrdhup = EPOLLRDHUP;
static const uint32_t vd_epollhup = EPOLLHUP;
static const uint32_t vd_epollerr = EPOLLERR;

#endif
