/* lines.h - the framing of lines into zmq messages, shared by the two
 * producers: the workers' zmq output (worker/sink.c) and `ringctl send`
 * (supervisor/ctl/ctl_send.c). It lives in common/ so that ringctl links
 * without the worker library.
 *
 * A message is one frame holding whole lines, each with its '\n', at most
 * SINK_MSG_MAX bytes unless one line alone is longer (then it travels
 * alone). The zmq source takes exactly this, so a consumer splits on '\n'
 * and one ringmaster can feed another. The names keep the sink's prefix:
 * the sink is where the format is described (sink.h). */
#ifndef RM_LINES_H
#define RM_LINES_H

#include <stddef.h>

#define SINK_MSG_MAX (64 * 1024)

/* The length of the longest prefix of lines[0..len) that ends with '\n'
 * and fits in max bytes; if the first line alone is longer than max, the
 * length of that line with its '\n'; 0 if lines[0..len) holds no '\n'. */
size_t sink_chunk_len(const char *lines, size_t len, size_t max);

#endif
