/* kith: umbrella header for libkith. */
#ifndef KITH_H
#define KITH_H

#include "kith/version.h"
#include "kith/err.h"
#include "kith/util.h"
#include "kith/crdt.h"
#include "kith/ws.h"

#endif
