/* The floor of a durable enqueue on this machine, for bench/queue.sh: a
 * minimal C program that does only the disk work one `muxvisor send` must
 * do before it answers, and nothing else (no argument parsing, no checks,
 * no log line). Whatever a send costs above this row is muxvisor's own.
 *
 *   floor two DIR      create DIR/tmp/<pid>, write 300 bytes, fdatasync,
 *                      rename into DIR/new/, fsync DIR/new (what send does)
 *   floor append FILE  append 300 bytes to FILE, fdatasync (one write with
 *                      one data sync: the least any durable enqueue can do)
 *
 * Exits 1 on any failed call. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    char rec[300], tmp[4096], dst[4096];
    memset(rec, 'x', sizeof rec);
    rec[sizeof rec - 1] = '\n';
    if (argc == 3 && strcmp(argv[1], "two") == 0) {
        snprintf(tmp, sizeof tmp, "%s/tmp/%d", argv[2], (int)getpid());
        snprintf(dst, sizeof dst, "%s/new/%d", argv[2], (int)getpid());
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 || write(fd, rec, sizeof rec) != sizeof rec || fdatasync(fd) || close(fd))
            return 1;
        if (rename(tmp, dst))
            return 1;
        snprintf(dst, sizeof dst, "%s/new", argv[2]);
        int dir = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir < 0 || fsync(dir) || close(dir))
            return 1;
        printf("%s/new/%d\n", argv[2], (int)getpid());
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "append") == 0) {
        int fd = open(argv[2], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0 || write(fd, rec, sizeof rec) != sizeof rec || fdatasync(fd) || close(fd))
            return 1;
        return 0;
    }
    fprintf(stderr, "usage: floor two DIR | floor append FILE\n");
    return 2;
}
