/* cli_timeline.h -- sextant-collector timeline: a window of the timeline
 * read straight from a database file, as JSON, CSV or Markdown, without a
 * running server (a collector may be writing to the file meanwhile). */
#ifndef SEXTANT_CLI_TIMELINE_H
#define SEXTANT_CLI_TIMELINE_H

/* @argv[0] is "timeline". Writes the window to stdout, every event of it
 * (page after page); returns the exit status: 0 done, 1 the database
 * could not be read (one line on stderr), 2 bad usage. */
int cli_timeline_main(int argc, char **argv);

#endif
