! libdragon — the Fortran module: the C ABI (include/dragon/*.h) through ISO_C_BINDING.
!
! A thin binding, one interface per C function with the C name, so docs/abi.md and the C
! headers stay the reference. How the C types map:
!   dragon_status_t and other enums        integer(c_int), the named constants below
!   an opaque handle (dragon_pool_t *)      type(c_ptr), by value
!   a handle that comes back (T **)         type(c_ptr), intent(out)
!   const void * / void * buffers           type(c_ptr), by value: pass c_loc(x)
!   size_t, int64_t, uint32_t, uint64_t     integer(c_size_t), (c_int64_t), (c_int32_t),
!                                           (c_int64_t); unsigned values are bit patterns
!   dragon_timeout_t                        integer(c_int64_t), nanoseconds, by value
!   const char * in                         character(kind=c_char) :: s(*): pass
!                                           f_c_string(s) (or 'text' // c_null_char)
!   const char * out                        the *_string helpers return Fortran strings
!   const attr * that may be NULL           the derived type, optional (absent: NULL)
!   an out pointer that may be NULL         optional, intent(out)
! The derived types with bind(C) mirror the C structs field by field (docs/fortran.md).
module dragon
  use, intrinsic :: iso_c_binding
  implicit none
  private

  ! ---- Status codes (dragon/status.h). Values are part of the ABI. ----
  ! tests/abi/check-fortran-status.py checks this list against status.h.
  integer(c_int), parameter, public :: DRAGON_SUCCESS = 0
  integer(c_int), parameter, public :: DRAGON_INVALID_ARGUMENT = 1
  integer(c_int), parameter, public :: DRAGON_NO_MEMORY = 2
  integer(c_int), parameter, public :: DRAGON_NO_SPACE = 3
  integer(c_int), parameter, public :: DRAGON_TIMEOUT = 4
  integer(c_int), parameter, public :: DRAGON_NOT_FOUND = 5
  integer(c_int), parameter, public :: DRAGON_ALREADY_EXISTS = 6
  integer(c_int), parameter, public :: DRAGON_PERMISSION_DENIED = 7
  integer(c_int), parameter, public :: DRAGON_BAD_DESCRIPTOR = 8
  integer(c_int), parameter, public :: DRAGON_POOL_MISMATCH = 9
  integer(c_int), parameter, public :: DRAGON_BAD_POINTER = 10
  integer(c_int), parameter, public :: DRAGON_NOT_ALLOCATED = 11
  integer(c_int), parameter, public :: DRAGON_BUFFER_TOO_SMALL = 12
  integer(c_int), parameter, public :: DRAGON_CORRUPTED = 13
  integer(c_int), parameter, public :: DRAGON_CLOSED = 14
  integer(c_int), parameter, public :: DRAGON_OWNER_DIED = 15
  integer(c_int), parameter, public :: DRAGON_NOT_SUPPORTED = 16
  integer(c_int), parameter, public :: DRAGON_SYSTEM_ERROR = 17
  integer(c_int), parameter, public :: DRAGON_INTERNAL = 18
  integer(c_int), parameter, public :: DRAGON_BROKEN = 19
  integer(c_int), parameter, public :: DRAGON_MALFORMED = 20
  integer(c_int), parameter, public :: DRAGON_VERSION_MISMATCH = 21
  integer(c_int), parameter, public :: DRAGON_NOT_IN_RUNTIME = 22
  integer(c_int), parameter, public :: DRAGON_TASK_FAILED = 23
  integer(c_int), parameter, public :: DRAGON_CANCELLED = 24
  integer(c_int), parameter, public :: DRAGON_WORKER_DIED = 25

  ! ---- Timeouts (dragon/status.h): nanoseconds; 0 tries once, -1 waits without limit. ----
  integer(c_int64_t), parameter, public :: DRAGON_TIMEOUT_FOREVER = -1_c_int64_t
  integer(c_int64_t), parameter, public :: DRAGON_TIMEOUT_TRY = 0_c_int64_t

  ! ---- Wait modes (dragon/wait.h) ----
  integer(c_int), parameter, public :: DRAGON_WAIT_DEFAULT = 0
  integer(c_int), parameter, public :: DRAGON_WAIT_ADAPTIVE = 1
  integer(c_int), parameter, public :: DRAGON_WAIT_SPIN = 2
  integer(c_int), parameter, public :: DRAGON_WAIT_IDLE = 3

  ! ---- Pools (dragon/pool.h) ----
  integer, parameter, public :: DRAGON_POOL_NAME_MAX = 64
  integer, parameter, public :: DRAGON_RUNTIME_ID_MAX = 32
  integer, parameter, public :: DRAGON_POOL_DESCRIPTOR_MAX = 160
  integer(c_int32_t), parameter, public :: DRAGON_POOL_NO_RESERVE = 1_c_int32_t

  ! ---- Channels and sync objects (dragon/channel.h, dragon/sync.h) ----
  integer, parameter, public :: DRAGON_OBJECT_DESCRIPTOR_MAX = 192
  integer(c_int32_t), parameter, public :: DRAGON_CHANNEL_READABLE = 1_c_int32_t
  integer(c_int32_t), parameter, public :: DRAGON_CHANNEL_WRITABLE = 2_c_int32_t
  integer(c_int32_t), parameter, public :: DRAGON_CHANNEL_CLOSED = 4_c_int32_t
  integer, parameter, public :: DRAGON_QUEUE_DEFAULT_MAXSIZE = 4096

  ! ---- Policies (dragon/policy.h, dragon/machine.h) ----
  integer, parameter, public :: DRAGON_HOST_NAME_MAX = 255
  integer, parameter, public :: DRAGON_POLICY_MAX_CPUS = 1024
  integer, parameter, public :: DRAGON_POLICY_MAX_GPUS = 64
  integer(c_int), parameter, public :: DRAGON_PLACEMENT_UNSET = 0
  integer(c_int), parameter, public :: DRAGON_PLACEMENT_ANYWHERE = 1
  integer(c_int), parameter, public :: DRAGON_PLACEMENT_LOCAL = 2
  integer(c_int), parameter, public :: DRAGON_PLACEMENT_HOST_NAME = 3
  integer(c_int), parameter, public :: DRAGON_PLACEMENT_HOST_ID = 4
  integer(c_int), parameter, public :: DRAGON_DISTRIBUTION_UNSET = 0
  integer(c_int), parameter, public :: DRAGON_DISTRIBUTION_ROUNDROBIN = 1
  integer(c_int), parameter, public :: DRAGON_DISTRIBUTION_BLOCK = 2

  ! ---- Processes (dragon/process.h) ----
  integer(c_int), parameter, public :: DRAGON_STDIO_RELAY = 0
  integer(c_int), parameter, public :: DRAGON_STDIO_INHERIT = 1
  integer(c_int), parameter, public :: DRAGON_STDIO_DEVNULL = 2
  integer(c_int), parameter, public :: DRAGON_STDIO_PIPE = 3
  integer(c_int), parameter, public :: DRAGON_PROCESS_RUNNING = 1
  integer(c_int), parameter, public :: DRAGON_PROCESS_EXITED = 2

  ! ---- Registry (dragon/registry.h) ----
  integer(c_int), parameter, public :: DRAGON_REGISTRY_BYTES = 0
  integer(c_int), parameter, public :: DRAGON_REGISTRY_POOL = 1
  integer(c_int), parameter, public :: DRAGON_REGISTRY_CHANNEL = 2
  integer(c_int), parameter, public :: DRAGON_REGISTRY_DICT = 3
  integer(c_int), parameter, public :: DRAGON_REGISTRY_QUEUE = 4
  integer(c_int), parameter, public :: DRAGON_REGISTRY_LOCK = 5
  integer(c_int), parameter, public :: DRAGON_REGISTRY_SEMAPHORE = 6
  integer(c_int), parameter, public :: DRAGON_REGISTRY_EVENT = 7
  integer(c_int), parameter, public :: DRAGON_REGISTRY_BARRIER = 8
  integer(c_int), parameter, public :: DRAGON_REGISTRY_MEMORY = 9
  integer, parameter, public :: DRAGON_REGISTRY_NAME_MAX = 255
  integer, parameter, public :: DRAGON_REGISTRY_VALUE_MAX = 65536

  ! ---- Structs, field by field as in C. Fill the attr types with their *_attr_init. ----

  ! dragon_pool_attr_t
  type, bind(C), public :: dragon_pool_attr_t
    integer(c_size_t) :: struct_size = 0
    type(c_ptr) :: runtime_id = c_null_ptr ! const char *: c_loc of a NUL-terminated target
    integer(c_int64_t) :: node_id = -1
    integer(c_size_t) :: min_block = 0
    integer(c_int32_t) :: flags = 0 ! uint32_t: DRAGON_POOL_* flags
  end type

  ! dragon_pool_stats_t: set struct_size to c_sizeof(stats) before dragon_pool_stats.
  type, bind(C), public :: dragon_pool_stats_t
    integer(c_size_t) :: struct_size = 0
    integer(c_int64_t) :: total_bytes = 0 ! uint64_t, as are the other counts
    integer(c_int64_t) :: free_bytes = 0
    integer(c_int64_t) :: used_bytes = 0
    real(c_double) :: utilization_pct = 0
    integer(c_int64_t) :: allocation_count = 0
    integer(c_int64_t) :: largest_free_block = 0
    integer(c_int64_t) :: min_block = 0
    integer(c_int64_t) :: cached_bytes = 0
  end type

  ! dragon_pool_reclaimed_t: set struct_size to c_sizeof(result).
  type, bind(C), public :: dragon_pool_reclaimed_t
    integer(c_size_t) :: struct_size = 0
    integer(c_int64_t) :: blocks = 0
    integer(c_int64_t) :: bytes = 0
    integer(c_int64_t) :: waiters = 0
    integer(c_int64_t) :: cached_blocks = 0
  end type

  ! dragon_channel_attr_t (also the sync objects' and queues' attr)
  type, bind(C), public :: dragon_channel_attr_t
    integer(c_size_t) :: struct_size = 0
    integer(c_int) :: wait_mode = DRAGON_WAIT_DEFAULT
  end type

  ! dragon_channel_info_t: set struct_size to c_sizeof(info).
  type, bind(C), public :: dragon_channel_info_t
    integer(c_size_t) :: struct_size = 0
    integer(c_int64_t) :: capacity = 0
    integer(c_int64_t) :: slot_size = 0
    integer(c_int64_t) :: count = 0
    integer(c_int32_t) :: blocked_senders = 0
    integer(c_int32_t) :: blocked_receivers = 0
  end type

  ! dragon_policy_t
  type, bind(C), public :: dragon_policy_t
    integer(c_size_t) :: struct_size = 0
    integer(c_int) :: placement = DRAGON_PLACEMENT_UNSET
    integer(c_int) :: distribution = DRAGON_DISTRIBUTION_UNSET
    character(kind=c_char) :: host_name(DRAGON_HOST_NAME_MAX + 1) = c_null_char
    integer(c_int64_t) :: host_id = -1
    integer(c_int32_t) :: cpu_count = 0
    integer(c_int32_t) :: cpus(DRAGON_POLICY_MAX_CPUS) = 0
    integer(c_int32_t) :: gpu_count = 0
    integer(c_int32_t) :: gpus(DRAGON_POLICY_MAX_GPUS) = 0
    integer(c_int) :: wait_mode = DRAGON_WAIT_DEFAULT
  end type

  ! dragon_process_attr_t. The pointers (env, cwd, policy, role) are c_loc of targets that
  ! outlive the call; the *_args helpers below take the role as a Fortran string instead.
  type, bind(C), public :: dragon_process_attr_t
    integer(c_size_t) :: struct_size = 0
    type(c_ptr) :: env = c_null_ptr    ! const char *const *: NULL-terminated c_ptr array
    type(c_ptr) :: cwd = c_null_ptr    ! const char *
    integer(c_int) :: out_mode = DRAGON_STDIO_RELAY
    integer(c_int) :: err_mode = DRAGON_STDIO_RELAY
    type(c_ptr) :: policy = c_null_ptr ! const dragon_policy_t *
    integer(c_int) :: in_mode = DRAGON_STDIO_DEVNULL
    integer(c_int32_t) :: max_restarts = 0
    type(c_ptr) :: role = c_null_ptr   ! const char *
  end type

  ! dragon_process_pipes_t
  type, bind(C), public :: dragon_process_pipes_t
    integer(c_int) :: in_fd = -1
    integer(c_int) :: out_fd = -1
    integer(c_int) :: err_fd = -1
  end type

  ! dragon_process_status_t: set struct_size to c_sizeof(status).
  type, bind(C), public :: dragon_process_status_t
    integer(c_size_t) :: struct_size = 0
    integer(c_int) :: state = 0
    integer(c_int32_t) :: pid = 0
    integer(c_int32_t) :: exit_code = -1
    integer(c_int32_t) :: restarts = 0
    integer(c_int32_t) :: node_id = 0
  end type

  ! ---- The C functions ----

  ! status.h, version.h
  public :: dragon_strerror, dragon_last_error, dragon_version, dragon_version_numbers
  ! pool.h
  public :: dragon_pool_attr_init, dragon_pool_create, dragon_pool_attach, &
            dragon_pool_serialize, dragon_pool_attach_serialized, dragon_pool_detach, &
            dragon_pool_destroy, dragon_pool_name, dragon_pool_segment_name, dragon_pool_stats, &
            dragon_pool_alloc, dragon_pool_alloc_timeout, dragon_pool_free, &
            dragon_pool_block_size, dragon_pool_mem_serialize, dragon_pool_mem_attach, &
            dragon_pool_adopt, dragon_pool_disown, dragon_pool_reclaim
  ! channel.h
  public :: dragon_channel_attr_init, dragon_channel_create, dragon_channel_serialize, &
            dragon_channel_attach, dragon_channel_detach, dragon_channel_destroy, &
            dragon_channel_set_wait_mode, dragon_channel_pool, dragon_channel_send, &
            dragon_channel_send_mem, dragon_channel_recv, dragon_channel_recv_mem, &
            dragon_channel_info, dragon_channel_poll
  ! sync.h
  public :: dragon_queue_create, dragon_queue_attach, dragon_queue_create_typed, &
            dragon_queue_attach_typed, dragon_queue_item_type, dragon_queue_serialize, &
            dragon_queue_detach, dragon_queue_destroy, dragon_queue_put, dragon_queue_get, &
            dragon_queue_task_done, dragon_queue_join, dragon_queue_size
  public :: dragon_lock_create, dragon_lock_attach, dragon_lock_serialize, dragon_lock_detach, &
            dragon_lock_destroy, dragon_lock_acquire, dragon_lock_release, dragon_lock_locked
  public :: dragon_semaphore_create, dragon_semaphore_attach, dragon_semaphore_serialize, &
            dragon_semaphore_detach, dragon_semaphore_destroy, dragon_semaphore_acquire, &
            dragon_semaphore_release, dragon_semaphore_value
  public :: dragon_event_create, dragon_event_attach, dragon_event_serialize, &
            dragon_event_detach, dragon_event_destroy, dragon_event_set, dragon_event_clear, &
            dragon_event_is_set, dragon_event_wait
  public :: dragon_barrier_create, dragon_barrier_attach, dragon_barrier_serialize, &
            dragon_barrier_detach, dragon_barrier_destroy, dragon_barrier_wait, &
            dragon_barrier_abort, dragon_barrier_reset, dragon_barrier_info
  ! policy.h
  public :: dragon_policy_init
  ! process.h
  public :: dragon_process_attr_init, dragon_process_create, dragon_process_create_with_pipes, &
            dragon_process_join, dragon_process_signal, dragon_process_stop, &
            dragon_process_query, dragon_process_group_create, dragon_process_group_add, &
            dragon_process_group_set_restart, dragon_process_group_start, &
            dragon_process_group_join, dragon_process_group_stop, dragon_process_group_size, &
            dragon_process_group_member, dragon_process_group_destroy, dragon_process_self, &
            dragon_process_group_rank, dragon_process_role, dragon_process_self_exe
  ! registry.h
  public :: dragon_registry_register, dragon_registry_lookup, dragon_registry_unregister, &
            dragon_registry_attach_pool, dragon_registry_attach_channel, &
            dragon_registry_attach_queue, dragon_registry_attach_lock, &
            dragon_registry_attach_semaphore, dragon_registry_attach_event, &
            dragon_registry_attach_barrier

  ! ---- Fortran helpers (module procedures of libdragon-fortran) ----
  public :: f_c_string, c_f_string, dragon_version_string, dragon_strerror_string, &
            dragon_last_error_string, dragon_process_role_string, &
            dragon_process_self_exe_string, dragon_process_create_args, &
            dragon_process_group_add_args, dragon_seconds

  interface
    ! ---- status.h, version.h ----
    type(c_ptr) function dragon_strerror(status) bind(C, name='dragon_strerror')
      import :: c_ptr, c_int
      integer(c_int), value :: status
    end function
    type(c_ptr) function dragon_last_error() bind(C, name='dragon_last_error')
      import :: c_ptr
    end function
    type(c_ptr) function dragon_version() bind(C, name='dragon_version')
      import :: c_ptr
    end function
    integer(c_int) function dragon_version_numbers(major, minor, patch) &
        bind(C, name='dragon_version_numbers')
      import :: c_int
      integer(c_int), intent(out), optional :: major, minor, patch
    end function

    ! ---- pool.h ----
    integer(c_int) function dragon_pool_attr_init(attr) bind(C, name='dragon_pool_attr_init')
      import :: c_int, dragon_pool_attr_t
      type(dragon_pool_attr_t), intent(inout) :: attr
    end function
    integer(c_int) function dragon_pool_create(name, size, attr, pool) &
        bind(C, name='dragon_pool_create')
      import :: c_int, c_char, c_size_t, c_ptr, dragon_pool_attr_t
      character(kind=c_char), intent(in) :: name(*)
      integer(c_size_t), value :: size
      type(dragon_pool_attr_t), intent(in), optional :: attr
      type(c_ptr), intent(out) :: pool
    end function
    integer(c_int) function dragon_pool_attach(name, attr, pool) &
        bind(C, name='dragon_pool_attach')
      import :: c_int, c_char, c_ptr, dragon_pool_attr_t
      character(kind=c_char), intent(in) :: name(*)
      type(dragon_pool_attr_t), intent(in), optional :: attr
      type(c_ptr), intent(out) :: pool
    end function
    integer(c_int) function dragon_pool_serialize(pool, buf, cap, len) &
        bind(C, name='dragon_pool_serialize')
      import :: c_int, c_ptr, c_size_t
      type(c_ptr), value :: pool, buf
      integer(c_size_t), value :: cap
      integer(c_size_t), intent(out) :: len
    end function
    integer(c_int) function dragon_pool_attach_serialized(bytes, len, pool) &
        bind(C, name='dragon_pool_attach_serialized')
      import :: c_int, c_ptr, c_size_t
      type(c_ptr), value :: bytes
      integer(c_size_t), value :: len
      type(c_ptr), intent(out) :: pool
    end function
    integer(c_int) function dragon_pool_detach(pool) bind(C, name='dragon_pool_detach')
      import :: c_int, c_ptr
      type(c_ptr), value :: pool
    end function
    integer(c_int) function dragon_pool_destroy(pool) bind(C, name='dragon_pool_destroy')
      import :: c_int, c_ptr
      type(c_ptr), value :: pool
    end function
    integer(c_int) function dragon_pool_name(pool, name) bind(C, name='dragon_pool_name')
      import :: c_int, c_ptr
      type(c_ptr), value :: pool
      type(c_ptr), intent(out) :: name ! const char *, owned by the handle: c_f_string
    end function
    integer(c_int) function dragon_pool_segment_name(pool, segment) &
        bind(C, name='dragon_pool_segment_name')
      import :: c_int, c_ptr
      type(c_ptr), value :: pool
      type(c_ptr), intent(out) :: segment
    end function
    integer(c_int) function dragon_pool_stats(pool, stats) bind(C, name='dragon_pool_stats')
      import :: c_int, c_ptr, dragon_pool_stats_t
      type(c_ptr), value :: pool
      type(dragon_pool_stats_t), intent(inout) :: stats
    end function
    integer(c_int) function dragon_pool_alloc(pool, size, ptr) bind(C, name='dragon_pool_alloc')
      import :: c_int, c_ptr, c_size_t
      type(c_ptr), value :: pool
      integer(c_size_t), value :: size
      type(c_ptr), intent(out) :: ptr
    end function
    integer(c_int) function dragon_pool_alloc_timeout(pool, size, timeout, ptr) &
        bind(C, name='dragon_pool_alloc_timeout')
      import :: c_int, c_ptr, c_size_t, c_int64_t
      type(c_ptr), value :: pool
      integer(c_size_t), value :: size
      integer(c_int64_t), value :: timeout
      type(c_ptr), intent(out) :: ptr
    end function
    integer(c_int) function dragon_pool_free(pool, ptr) bind(C, name='dragon_pool_free')
      import :: c_int, c_ptr
      type(c_ptr), value :: pool, ptr
    end function
    integer(c_int) function dragon_pool_block_size(pool, ptr, size) &
        bind(C, name='dragon_pool_block_size')
      import :: c_int, c_ptr, c_size_t
      type(c_ptr), value :: pool, ptr
      integer(c_size_t), intent(out) :: size
    end function
    integer(c_int) function dragon_pool_mem_serialize(pool, ptr, size, buf, cap, len) &
        bind(C, name='dragon_pool_mem_serialize')
      import :: c_int, c_ptr, c_size_t
      type(c_ptr), value :: pool, ptr
      integer(c_size_t), value :: size
      type(c_ptr), value :: buf
      integer(c_size_t), value :: cap
      integer(c_size_t), intent(out) :: len
    end function
    integer(c_int) function dragon_pool_mem_attach(pool, bytes, len, ptr, size) &
        bind(C, name='dragon_pool_mem_attach')
      import :: c_int, c_ptr, c_size_t
      type(c_ptr), value :: pool, bytes
      integer(c_size_t), value :: len
      type(c_ptr), intent(out) :: ptr
      integer(c_size_t), intent(out) :: size
    end function
    integer(c_int) function dragon_pool_adopt(pool, ptr) bind(C, name='dragon_pool_adopt')
      import :: c_int, c_ptr
      type(c_ptr), value :: pool, ptr
    end function
    integer(c_int) function dragon_pool_disown(pool, ptr) bind(C, name='dragon_pool_disown')
      import :: c_int, c_ptr
      type(c_ptr), value :: pool, ptr
    end function
    integer(c_int) function dragon_pool_reclaim(pool, pid, result) &
        bind(C, name='dragon_pool_reclaim')
      import :: c_int, c_ptr, dragon_pool_reclaimed_t
      type(c_ptr), value :: pool
      integer(c_int), value :: pid ! pid_t (int on Linux)
      type(dragon_pool_reclaimed_t), intent(inout), optional :: result
    end function

    ! ---- channel.h ----
    integer(c_int) function dragon_channel_attr_init(attr) bind(C, name='dragon_channel_attr_init')
      import :: c_int, dragon_channel_attr_t
      type(dragon_channel_attr_t), intent(inout) :: attr
    end function
    integer(c_int) function dragon_channel_create(pool, capacity, slot_size, attr, channel) &
        bind(C, name='dragon_channel_create')
      import :: c_int, c_ptr, c_size_t, dragon_channel_attr_t
      type(c_ptr), value :: pool
      integer(c_size_t), value :: capacity, slot_size
      type(dragon_channel_attr_t), intent(in), optional :: attr
      type(c_ptr), intent(out) :: channel
    end function
    integer(c_int) function dragon_channel_serialize(channel, buf, cap, len) &
        bind(C, name='dragon_channel_serialize')
      import :: c_int, c_ptr, c_size_t
      type(c_ptr), value :: channel, buf
      integer(c_size_t), value :: cap
      integer(c_size_t), intent(out) :: len
    end function
    integer(c_int) function dragon_channel_attach(bytes, len, attr, channel) &
        bind(C, name='dragon_channel_attach')
      import :: c_int, c_ptr, c_size_t, dragon_channel_attr_t
      type(c_ptr), value :: bytes
      integer(c_size_t), value :: len
      type(dragon_channel_attr_t), intent(in), optional :: attr
      type(c_ptr), intent(out) :: channel
    end function
    integer(c_int) function dragon_channel_detach(channel) bind(C, name='dragon_channel_detach')
      import :: c_int, c_ptr
      type(c_ptr), value :: channel
    end function
    integer(c_int) function dragon_channel_destroy(channel) bind(C, name='dragon_channel_destroy')
      import :: c_int, c_ptr
      type(c_ptr), value :: channel
    end function
    integer(c_int) function dragon_channel_set_wait_mode(channel, mode) &
        bind(C, name='dragon_channel_set_wait_mode')
      import :: c_int, c_ptr
      type(c_ptr), value :: channel
      integer(c_int), value :: mode
    end function
    integer(c_int) function dragon_channel_pool(channel, pool) bind(C, name='dragon_channel_pool')
      import :: c_int, c_ptr
      type(c_ptr), value :: channel
      type(c_ptr), intent(out) :: pool
    end function
    integer(c_int) function dragon_channel_send(channel, buf, len, timeout) &
        bind(C, name='dragon_channel_send')
      import :: c_int, c_ptr, c_size_t, c_int64_t
      type(c_ptr), value :: channel, buf
      integer(c_size_t), value :: len
      integer(c_int64_t), value :: timeout
    end function
    integer(c_int) function dragon_channel_send_mem(channel, ptr, len, timeout) &
        bind(C, name='dragon_channel_send_mem')
      import :: c_int, c_ptr, c_size_t, c_int64_t
      type(c_ptr), value :: channel, ptr
      integer(c_size_t), value :: len
      integer(c_int64_t), value :: timeout
    end function
    integer(c_int) function dragon_channel_recv(channel, buf, cap, len, timeout) &
        bind(C, name='dragon_channel_recv')
      import :: c_int, c_ptr, c_size_t, c_int64_t
      type(c_ptr), value :: channel, buf
      integer(c_size_t), value :: cap
      integer(c_size_t), intent(out) :: len
      integer(c_int64_t), value :: timeout
    end function
    integer(c_int) function dragon_channel_recv_mem(channel, ptr, len, timeout) &
        bind(C, name='dragon_channel_recv_mem')
      import :: c_int, c_ptr, c_size_t, c_int64_t
      type(c_ptr), value :: channel
      type(c_ptr), intent(out) :: ptr
      integer(c_size_t), intent(out) :: len
      integer(c_int64_t), value :: timeout
    end function
    integer(c_int) function dragon_channel_info(channel, info) bind(C, name='dragon_channel_info')
      import :: c_int, c_ptr, dragon_channel_info_t
      type(c_ptr), value :: channel
      type(dragon_channel_info_t), intent(inout) :: info
    end function
    integer(c_int) function dragon_channel_poll(channels, n, events, revents, timeout) &
        bind(C, name='dragon_channel_poll')
      import :: c_int, c_ptr, c_size_t, c_int32_t, c_int64_t
      type(c_ptr), intent(in) :: channels(*) ! n channel handles
      integer(c_size_t), value :: n
      integer(c_int32_t), value :: events
      integer(c_int32_t), intent(out) :: revents(*)
      integer(c_int64_t), value :: timeout
    end function

    ! ---- sync.h: queues ----
    integer(c_int) function dragon_queue_create(pool, maxsize, item_size, attr, queue) &
        bind(C, name='dragon_queue_create')
      import :: c_int, c_ptr, c_size_t, dragon_channel_attr_t
      type(c_ptr), value :: pool
      integer(c_size_t), value :: maxsize, item_size
      type(dragon_channel_attr_t), intent(in), optional :: attr
      type(c_ptr), intent(out) :: queue
    end function
    integer(c_int) function dragon_queue_attach(bytes, len, attr, queue) &
        bind(C, name='dragon_queue_attach')
      import :: c_int, c_ptr, c_size_t, dragon_channel_attr_t
      type(c_ptr), value :: bytes
      integer(c_size_t), value :: len
      type(dragon_channel_attr_t), intent(in), optional :: attr
      type(c_ptr), intent(out) :: queue
    end function
    integer(c_int) function dragon_queue_create_typed(pool, maxsize, item_size, type_tag, attr, &
                                                      queue) bind(C, name='dragon_queue_create_typed')
      import :: c_int, c_ptr, c_size_t, c_int64_t, dragon_channel_attr_t
      type(c_ptr), value :: pool
      integer(c_size_t), value :: maxsize, item_size
      integer(c_int64_t), value :: type_tag ! uint64_t
      type(dragon_channel_attr_t), intent(in), optional :: attr
      type(c_ptr), intent(out) :: queue
    end function
    integer(c_int) function dragon_queue_attach_typed(bytes, len, item_size, type_tag, attr, &
                                                      queue) bind(C, name='dragon_queue_attach_typed')
      import :: c_int, c_ptr, c_size_t, c_int64_t, dragon_channel_attr_t
      type(c_ptr), value :: bytes
      integer(c_size_t), value :: len, item_size
      integer(c_int64_t), value :: type_tag ! uint64_t
      type(dragon_channel_attr_t), intent(in), optional :: attr
      type(c_ptr), intent(out) :: queue
    end function
    integer(c_int) function dragon_queue_item_type(queue, item_size, type_tag) &
        bind(C, name='dragon_queue_item_type')
      import :: c_int, c_ptr, c_size_t, c_int64_t
      type(c_ptr), value :: queue
      integer(c_size_t), intent(out), optional :: item_size
      integer(c_int64_t), intent(out), optional :: type_tag
    end function
    integer(c_int) function dragon_queue_serialize(queue, buf, cap, len) &
        bind(C, name='dragon_queue_serialize')
      import :: c_int, c_ptr, c_size_t
      type(c_ptr), value :: queue, buf
      integer(c_size_t), value :: cap
      integer(c_size_t), intent(out) :: len
    end function
    integer(c_int) function dragon_queue_detach(queue) bind(C, name='dragon_queue_detach')
      import :: c_int, c_ptr
      type(c_ptr), value :: queue
    end function
    integer(c_int) function dragon_queue_destroy(queue) bind(C, name='dragon_queue_destroy')
      import :: c_int, c_ptr
      type(c_ptr), value :: queue
    end function
    integer(c_int) function dragon_queue_put(queue, buf, len, timeout) &
        bind(C, name='dragon_queue_put')
      import :: c_int, c_ptr, c_size_t, c_int64_t
      type(c_ptr), value :: queue, buf
      integer(c_size_t), value :: len
      integer(c_int64_t), value :: timeout
    end function
    integer(c_int) function dragon_queue_get(queue, buf, cap, len, timeout) &
        bind(C, name='dragon_queue_get')
      import :: c_int, c_ptr, c_size_t, c_int64_t
      type(c_ptr), value :: queue, buf
      integer(c_size_t), value :: cap
      integer(c_size_t), intent(out) :: len
      integer(c_int64_t), value :: timeout
    end function
    integer(c_int) function dragon_queue_task_done(queue) bind(C, name='dragon_queue_task_done')
      import :: c_int, c_ptr
      type(c_ptr), value :: queue
    end function
    integer(c_int) function dragon_queue_join(queue, timeout) bind(C, name='dragon_queue_join')
      import :: c_int, c_ptr, c_int64_t
      type(c_ptr), value :: queue
      integer(c_int64_t), value :: timeout
    end function
    integer(c_int) function dragon_queue_size(queue, size, maxsize) &
        bind(C, name='dragon_queue_size')
      import :: c_int, c_ptr, c_size_t
      type(c_ptr), value :: queue
      integer(c_size_t), intent(out) :: size, maxsize
    end function

    ! ---- sync.h: locks ----
    integer(c_int) function dragon_lock_create(pool, recursive, attr, lock) &
        bind(C, name='dragon_lock_create')
      import :: c_int, c_ptr, dragon_channel_attr_t
      type(c_ptr), value :: pool
      integer(c_int), value :: recursive
      type(dragon_channel_attr_t), intent(in), optional :: attr
      type(c_ptr), intent(out) :: lock
    end function
    integer(c_int) function dragon_lock_attach(bytes, len, attr, lock) &
        bind(C, name='dragon_lock_attach')
      import :: c_int, c_ptr, c_size_t, dragon_channel_attr_t
      type(c_ptr), value :: bytes
      integer(c_size_t), value :: len
      type(dragon_channel_attr_t), intent(in), optional :: attr
      type(c_ptr), intent(out) :: lock
    end function
    integer(c_int) function dragon_lock_serialize(lock, buf, cap, len) &
        bind(C, name='dragon_lock_serialize')
      import :: c_int, c_ptr, c_size_t
      type(c_ptr), value :: lock, buf
      integer(c_size_t), value :: cap
      integer(c_size_t), intent(out) :: len
    end function
    integer(c_int) function dragon_lock_detach(lock) bind(C, name='dragon_lock_detach')
      import :: c_int, c_ptr
      type(c_ptr), value :: lock
    end function
    integer(c_int) function dragon_lock_destroy(lock) bind(C, name='dragon_lock_destroy')
      import :: c_int, c_ptr
      type(c_ptr), value :: lock
    end function
    integer(c_int) function dragon_lock_acquire(lock, timeout) bind(C, name='dragon_lock_acquire')
      import :: c_int, c_ptr, c_int64_t
      type(c_ptr), value :: lock
      integer(c_int64_t), value :: timeout
    end function
    integer(c_int) function dragon_lock_release(lock) bind(C, name='dragon_lock_release')
      import :: c_int, c_ptr
      type(c_ptr), value :: lock
    end function
    integer(c_int) function dragon_lock_locked(lock, locked) bind(C, name='dragon_lock_locked')
      import :: c_int, c_ptr
      type(c_ptr), value :: lock
      integer(c_int), intent(out) :: locked
    end function

    ! ---- sync.h: semaphores ----
    integer(c_int) function dragon_semaphore_create(pool, value, bounded, attr, sem) &
        bind(C, name='dragon_semaphore_create')
      import :: c_int, c_ptr, c_int32_t, dragon_channel_attr_t
      type(c_ptr), value :: pool
      integer(c_int32_t), value :: value ! uint32_t
      integer(c_int), value :: bounded
      type(dragon_channel_attr_t), intent(in), optional :: attr
      type(c_ptr), intent(out) :: sem
    end function
    integer(c_int) function dragon_semaphore_attach(bytes, len, attr, sem) &
        bind(C, name='dragon_semaphore_attach')
      import :: c_int, c_ptr, c_size_t, dragon_channel_attr_t
      type(c_ptr), value :: bytes
      integer(c_size_t), value :: len
      type(dragon_channel_attr_t), intent(in), optional :: attr
      type(c_ptr), intent(out) :: sem
    end function
    integer(c_int) function dragon_semaphore_serialize(sem, buf, cap, len) &
        bind(C, name='dragon_semaphore_serialize')
      import :: c_int, c_ptr, c_size_t
      type(c_ptr), value :: sem, buf
      integer(c_size_t), value :: cap
      integer(c_size_t), intent(out) :: len
    end function
    integer(c_int) function dragon_semaphore_detach(sem) bind(C, name='dragon_semaphore_detach')
      import :: c_int, c_ptr
      type(c_ptr), value :: sem
    end function
    integer(c_int) function dragon_semaphore_destroy(sem) bind(C, name='dragon_semaphore_destroy')
      import :: c_int, c_ptr
      type(c_ptr), value :: sem
    end function
    integer(c_int) function dragon_semaphore_acquire(sem, timeout) &
        bind(C, name='dragon_semaphore_acquire')
      import :: c_int, c_ptr, c_int64_t
      type(c_ptr), value :: sem
      integer(c_int64_t), value :: timeout
    end function
    integer(c_int) function dragon_semaphore_release(sem) bind(C, name='dragon_semaphore_release')
      import :: c_int, c_ptr
      type(c_ptr), value :: sem
    end function
    integer(c_int) function dragon_semaphore_value(sem, value) &
        bind(C, name='dragon_semaphore_value')
      import :: c_int, c_ptr, c_int32_t
      type(c_ptr), value :: sem
      integer(c_int32_t), intent(out) :: value ! uint32_t
    end function

    ! ---- sync.h: events ----
    integer(c_int) function dragon_event_create(pool, attr, event) &
        bind(C, name='dragon_event_create')
      import :: c_int, c_ptr, dragon_channel_attr_t
      type(c_ptr), value :: pool
      type(dragon_channel_attr_t), intent(in), optional :: attr
      type(c_ptr), intent(out) :: event
    end function
    integer(c_int) function dragon_event_attach(bytes, len, attr, event) &
        bind(C, name='dragon_event_attach')
      import :: c_int, c_ptr, c_size_t, dragon_channel_attr_t
      type(c_ptr), value :: bytes
      integer(c_size_t), value :: len
      type(dragon_channel_attr_t), intent(in), optional :: attr
      type(c_ptr), intent(out) :: event
    end function
    integer(c_int) function dragon_event_serialize(event, buf, cap, len) &
        bind(C, name='dragon_event_serialize')
      import :: c_int, c_ptr, c_size_t
      type(c_ptr), value :: event, buf
      integer(c_size_t), value :: cap
      integer(c_size_t), intent(out) :: len
    end function
    integer(c_int) function dragon_event_detach(event) bind(C, name='dragon_event_detach')
      import :: c_int, c_ptr
      type(c_ptr), value :: event
    end function
    integer(c_int) function dragon_event_destroy(event) bind(C, name='dragon_event_destroy')
      import :: c_int, c_ptr
      type(c_ptr), value :: event
    end function
    integer(c_int) function dragon_event_set(event) bind(C, name='dragon_event_set')
      import :: c_int, c_ptr
      type(c_ptr), value :: event
    end function
    integer(c_int) function dragon_event_clear(event) bind(C, name='dragon_event_clear')
      import :: c_int, c_ptr
      type(c_ptr), value :: event
    end function
    integer(c_int) function dragon_event_is_set(event, set) bind(C, name='dragon_event_is_set')
      import :: c_int, c_ptr
      type(c_ptr), value :: event
      integer(c_int), intent(out) :: set
    end function
    integer(c_int) function dragon_event_wait(event, timeout) bind(C, name='dragon_event_wait')
      import :: c_int, c_ptr, c_int64_t
      type(c_ptr), value :: event
      integer(c_int64_t), value :: timeout
    end function

    ! ---- sync.h: barriers ----
    integer(c_int) function dragon_barrier_create(pool, parties, attr, barrier) &
        bind(C, name='dragon_barrier_create')
      import :: c_int, c_ptr, c_int32_t, dragon_channel_attr_t
      type(c_ptr), value :: pool
      integer(c_int32_t), value :: parties ! uint32_t
      type(dragon_channel_attr_t), intent(in), optional :: attr
      type(c_ptr), intent(out) :: barrier
    end function
    integer(c_int) function dragon_barrier_attach(bytes, len, attr, barrier) &
        bind(C, name='dragon_barrier_attach')
      import :: c_int, c_ptr, c_size_t, dragon_channel_attr_t
      type(c_ptr), value :: bytes
      integer(c_size_t), value :: len
      type(dragon_channel_attr_t), intent(in), optional :: attr
      type(c_ptr), intent(out) :: barrier
    end function
    integer(c_int) function dragon_barrier_serialize(barrier, buf, cap, len) &
        bind(C, name='dragon_barrier_serialize')
      import :: c_int, c_ptr, c_size_t
      type(c_ptr), value :: barrier, buf
      integer(c_size_t), value :: cap
      integer(c_size_t), intent(out) :: len
    end function
    integer(c_int) function dragon_barrier_detach(barrier) bind(C, name='dragon_barrier_detach')
      import :: c_int, c_ptr
      type(c_ptr), value :: barrier
    end function
    integer(c_int) function dragon_barrier_destroy(barrier) bind(C, name='dragon_barrier_destroy')
      import :: c_int, c_ptr
      type(c_ptr), value :: barrier
    end function
    integer(c_int) function dragon_barrier_wait(barrier, timeout, index) &
        bind(C, name='dragon_barrier_wait')
      import :: c_int, c_ptr, c_int64_t, c_int32_t
      type(c_ptr), value :: barrier
      integer(c_int64_t), value :: timeout
      integer(c_int32_t), intent(out), optional :: index ! uint32_t
    end function
    integer(c_int) function dragon_barrier_abort(barrier) bind(C, name='dragon_barrier_abort')
      import :: c_int, c_ptr
      type(c_ptr), value :: barrier
    end function
    integer(c_int) function dragon_barrier_reset(barrier) bind(C, name='dragon_barrier_reset')
      import :: c_int, c_ptr
      type(c_ptr), value :: barrier
    end function
    integer(c_int) function dragon_barrier_info(barrier, parties, waiting, broken) &
        bind(C, name='dragon_barrier_info')
      import :: c_int, c_ptr, c_int32_t
      type(c_ptr), value :: barrier
      integer(c_int32_t), intent(out) :: parties, waiting ! uint32_t
      integer(c_int), intent(out) :: broken
    end function

    ! ---- policy.h ----
    integer(c_int) function dragon_policy_init(policy) bind(C, name='dragon_policy_init')
      import :: c_int, dragon_policy_t
      type(dragon_policy_t), intent(inout) :: policy
    end function

    ! ---- process.h ----
    integer(c_int) function dragon_process_attr_init(attr) bind(C, name='dragon_process_attr_init')
      import :: c_int, dragon_process_attr_t
      type(dragon_process_attr_t), intent(inout) :: attr
    end function
    ! argv: c_loc of NUL-terminated strings, then c_null_ptr (or use dragon_process_create_args)
    integer(c_int) function dragon_process_create(argv, attr, puid) &
        bind(C, name='dragon_process_create')
      import :: c_int, c_ptr, c_int64_t, dragon_process_attr_t
      type(c_ptr), intent(in) :: argv(*)
      type(dragon_process_attr_t), intent(in), optional :: attr
      integer(c_int64_t), intent(out) :: puid ! uint64_t
    end function
    integer(c_int) function dragon_process_create_with_pipes(argv, attr, puid, pipes) &
        bind(C, name='dragon_process_create_with_pipes')
      import :: c_int, c_ptr, c_int64_t, dragon_process_attr_t, dragon_process_pipes_t
      type(c_ptr), intent(in) :: argv(*)
      type(dragon_process_attr_t), intent(in), optional :: attr
      integer(c_int64_t), intent(out) :: puid
      type(dragon_process_pipes_t), intent(out) :: pipes
    end function
    integer(c_int) function dragon_process_join(puid, timeout, exit_code) &
        bind(C, name='dragon_process_join')
      import :: c_int, c_int64_t
      integer(c_int64_t), value :: puid, timeout
      integer(c_int), intent(out) :: exit_code
    end function
    integer(c_int) function dragon_process_signal(puid, signal) bind(C, name='dragon_process_signal')
      import :: c_int, c_int64_t
      integer(c_int64_t), value :: puid
      integer(c_int), value :: signal
    end function
    integer(c_int) function dragon_process_stop(puid, signal) bind(C, name='dragon_process_stop')
      import :: c_int, c_int64_t
      integer(c_int64_t), value :: puid
      integer(c_int), value :: signal
    end function
    integer(c_int) function dragon_process_query(puid, status) bind(C, name='dragon_process_query')
      import :: c_int, c_int64_t, dragon_process_status_t
      integer(c_int64_t), value :: puid
      type(dragon_process_status_t), intent(inout) :: status
    end function
    integer(c_int) function dragon_process_group_create(policy, group) &
        bind(C, name='dragon_process_group_create')
      import :: c_int, c_ptr, dragon_policy_t
      type(dragon_policy_t), intent(in), optional :: policy
      type(c_ptr), intent(out) :: group
    end function
    integer(c_int) function dragon_process_group_add(group, n, argv, attr) &
        bind(C, name='dragon_process_group_add')
      import :: c_int, c_ptr, c_int32_t, dragon_process_attr_t
      type(c_ptr), value :: group
      integer(c_int32_t), value :: n ! uint32_t
      type(c_ptr), intent(in) :: argv(*)
      type(dragon_process_attr_t), intent(in), optional :: attr
    end function
    integer(c_int) function dragon_process_group_set_restart(group, max_restarts) &
        bind(C, name='dragon_process_group_set_restart')
      import :: c_int, c_ptr, c_int32_t
      type(c_ptr), value :: group
      integer(c_int32_t), value :: max_restarts
    end function
    integer(c_int) function dragon_process_group_start(group) &
        bind(C, name='dragon_process_group_start')
      import :: c_int, c_ptr
      type(c_ptr), value :: group
    end function
    integer(c_int) function dragon_process_group_join(group, timeout) &
        bind(C, name='dragon_process_group_join')
      import :: c_int, c_ptr, c_int64_t
      type(c_ptr), value :: group
      integer(c_int64_t), value :: timeout
    end function
    integer(c_int) function dragon_process_group_stop(group, grace) &
        bind(C, name='dragon_process_group_stop')
      import :: c_int, c_ptr, c_int64_t
      type(c_ptr), value :: group
      integer(c_int64_t), value :: grace
    end function
    integer(c_int) function dragon_process_group_size(group, size) &
        bind(C, name='dragon_process_group_size')
      import :: c_int, c_ptr, c_int32_t
      type(c_ptr), value :: group
      integer(c_int32_t), intent(out) :: size
    end function
    integer(c_int) function dragon_process_group_member(group, index, puid, ended, exit_code) &
        bind(C, name='dragon_process_group_member')
      import :: c_int, c_ptr, c_int32_t, c_int64_t
      type(c_ptr), value :: group
      integer(c_int32_t), value :: index
      integer(c_int64_t), intent(out) :: puid
      integer(c_int), intent(out) :: ended, exit_code
    end function
    integer(c_int) function dragon_process_group_destroy(group) &
        bind(C, name='dragon_process_group_destroy')
      import :: c_int, c_ptr
      type(c_ptr), value :: group
    end function
    integer(c_int) function dragon_process_self(puid) bind(C, name='dragon_process_self')
      import :: c_int, c_int64_t
      integer(c_int64_t), intent(out) :: puid
    end function
    integer(c_int) function dragon_process_group_rank(index, size) &
        bind(C, name='dragon_process_group_rank')
      import :: c_int, c_int32_t
      integer(c_int32_t), intent(out) :: index, size ! uint32_t
    end function
    type(c_ptr) function dragon_process_role() bind(C, name='dragon_process_role')
      import :: c_ptr
    end function
    type(c_ptr) function dragon_process_self_exe() bind(C, name='dragon_process_self_exe')
      import :: c_ptr
    end function

    ! ---- registry.h ----
    integer(c_int) function dragon_registry_register(name, kind, value, len, replace) &
        bind(C, name='dragon_registry_register')
      import :: c_int, c_char, c_ptr, c_size_t
      character(kind=c_char), intent(in) :: name(*)
      integer(c_int), value :: kind
      type(c_ptr), value :: value
      integer(c_size_t), value :: len
      integer(c_int), value :: replace
    end function
    integer(c_int) function dragon_registry_lookup(name, timeout, kind, buf, cap, len) &
        bind(C, name='dragon_registry_lookup')
      import :: c_int, c_char, c_ptr, c_size_t, c_int64_t
      character(kind=c_char), intent(in) :: name(*)
      integer(c_int64_t), value :: timeout
      integer(c_int), intent(out), optional :: kind
      type(c_ptr), value :: buf
      integer(c_size_t), value :: cap
      integer(c_size_t), intent(out) :: len
    end function
    integer(c_int) function dragon_registry_unregister(name) &
        bind(C, name='dragon_registry_unregister')
      import :: c_int, c_char
      character(kind=c_char), intent(in) :: name(*)
    end function
    integer(c_int) function dragon_registry_attach_pool(name, timeout, pool) &
        bind(C, name='dragon_registry_attach_pool')
      import :: c_int, c_char, c_ptr, c_int64_t
      character(kind=c_char), intent(in) :: name(*)
      integer(c_int64_t), value :: timeout
      type(c_ptr), intent(out) :: pool
    end function
    integer(c_int) function dragon_registry_attach_channel(name, timeout, attr, channel) &
        bind(C, name='dragon_registry_attach_channel')
      import :: c_int, c_char, c_ptr, c_int64_t, dragon_channel_attr_t
      character(kind=c_char), intent(in) :: name(*)
      integer(c_int64_t), value :: timeout
      type(dragon_channel_attr_t), intent(in), optional :: attr
      type(c_ptr), intent(out) :: channel
    end function
    integer(c_int) function dragon_registry_attach_queue(name, timeout, attr, queue) &
        bind(C, name='dragon_registry_attach_queue')
      import :: c_int, c_char, c_ptr, c_int64_t, dragon_channel_attr_t
      character(kind=c_char), intent(in) :: name(*)
      integer(c_int64_t), value :: timeout
      type(dragon_channel_attr_t), intent(in), optional :: attr
      type(c_ptr), intent(out) :: queue
    end function
    integer(c_int) function dragon_registry_attach_lock(name, timeout, attr, lock) &
        bind(C, name='dragon_registry_attach_lock')
      import :: c_int, c_char, c_ptr, c_int64_t, dragon_channel_attr_t
      character(kind=c_char), intent(in) :: name(*)
      integer(c_int64_t), value :: timeout
      type(dragon_channel_attr_t), intent(in), optional :: attr
      type(c_ptr), intent(out) :: lock
    end function
    integer(c_int) function dragon_registry_attach_semaphore(name, timeout, attr, sem) &
        bind(C, name='dragon_registry_attach_semaphore')
      import :: c_int, c_char, c_ptr, c_int64_t, dragon_channel_attr_t
      character(kind=c_char), intent(in) :: name(*)
      integer(c_int64_t), value :: timeout
      type(dragon_channel_attr_t), intent(in), optional :: attr
      type(c_ptr), intent(out) :: sem
    end function
    integer(c_int) function dragon_registry_attach_event(name, timeout, attr, event) &
        bind(C, name='dragon_registry_attach_event')
      import :: c_int, c_char, c_ptr, c_int64_t, dragon_channel_attr_t
      character(kind=c_char), intent(in) :: name(*)
      integer(c_int64_t), value :: timeout
      type(dragon_channel_attr_t), intent(in), optional :: attr
      type(c_ptr), intent(out) :: event
    end function
    integer(c_int) function dragon_registry_attach_barrier(name, timeout, attr, barrier) &
        bind(C, name='dragon_registry_attach_barrier')
      import :: c_int, c_char, c_ptr, c_int64_t, dragon_channel_attr_t
      character(kind=c_char), intent(in) :: name(*)
      integer(c_int64_t), value :: timeout
      type(dragon_channel_attr_t), intent(in), optional :: attr
      type(c_ptr), intent(out) :: barrier
    end function
  end interface

  ! libc's strlen, to measure the C strings the library returns.
  interface
    integer(c_size_t) function c_strlen(s) bind(C, name='strlen')
      import :: c_size_t, c_ptr
      type(c_ptr), value :: s
    end function
  end interface

contains

  ! A C string from a Fortran one: trailing blanks dropped, NUL appended. Pass it wherever
  ! the C ABI takes a const char *.
  pure function f_c_string(s) result(c)
    character(len=*), intent(in) :: s
    character(kind=c_char, len=:), allocatable :: c
    c = trim(s) // c_null_char
  end function

  ! A Fortran string from a NUL-terminated C string (a NULL pointer gives '').
  function c_f_string(p) result(s)
    type(c_ptr), intent(in) :: p
    character(len=:), allocatable :: s
    character(kind=c_char), pointer :: chars(:)
    integer :: n, i
    if (.not. c_associated(p)) then
      s = ''
      return
    end if
    n = int(c_strlen(p))
    call c_f_pointer(p, chars, [n])
    allocate(character(len=n) :: s)
    do i = 1, n
      s(i:i) = chars(i)
    end do
  end function

  ! The loaded library's version, "MAJOR.MINOR.PATCH".
  function dragon_version_string() result(s)
    character(len=:), allocatable :: s
    s = c_f_string(dragon_version())
  end function

  ! A status's short name ("timed out").
  function dragon_strerror_string(status) result(s)
    integer(c_int), intent(in) :: status
    character(len=:), allocatable :: s
    s = c_f_string(dragon_strerror(status))
  end function

  ! The calling thread's detailed message of its last failed call ('' if none failed yet).
  function dragon_last_error_string() result(s)
    character(len=:), allocatable :: s
    s = c_f_string(dragon_last_error())
  end function

  ! The role this process was started in ('' if none).
  function dragon_process_role_string() result(s)
    character(len=:), allocatable :: s
    s = c_f_string(dragon_process_role())
  end function

  ! The path of this program's executable ('' if unknown: see dragon_last_error_string).
  function dragon_process_self_exe_string() result(s)
    character(len=:), allocatable :: s
    s = c_f_string(dragon_process_self_exe())
  end function

  ! A timeout of `s` seconds, in the nanoseconds dragon_timeout_t counts.
  elemental function dragon_seconds(s) result(ns)
    real(c_double), intent(in) :: s
    integer(c_int64_t) :: ns
    ns = int(s * 1.0e9_c_double, c_int64_t)
  end function

  ! dragon_process_create with argv as Fortran strings (each trimmed) and, optionally, the
  ! role as one; attr's other fields as given (absent: dragon_process_attr_init's defaults).
  function dragon_process_create_args(args, puid, attr, role) result(status)
    character(len=*), intent(in) :: args(:)
    integer(c_int64_t), intent(out) :: puid
    type(dragon_process_attr_t), intent(in), optional :: attr
    character(len=*), intent(in), optional :: role
    integer(c_int) :: status
    character(kind=c_char, len=:), allocatable, target :: storage, role_c
    type(c_ptr), allocatable :: argv(:)
    type(dragon_process_attr_t) :: a
    call c_argv(args, storage, argv)
    status = attr_with_role(a, attr, role, role_c)
    if (status /= DRAGON_SUCCESS) return
    status = dragon_process_create(argv, a, puid)
  end function

  ! dragon_process_group_add with argv (and the role) as Fortran strings, as above.
  function dragon_process_group_add_args(group, n, args, attr, role) result(status)
    type(c_ptr), intent(in) :: group
    integer, intent(in) :: n
    character(len=*), intent(in) :: args(:)
    type(dragon_process_attr_t), intent(in), optional :: attr
    character(len=*), intent(in), optional :: role
    integer(c_int) :: status
    character(kind=c_char, len=:), allocatable, target :: storage, role_c
    type(c_ptr), allocatable :: argv(:)
    type(dragon_process_attr_t) :: a
    call c_argv(args, storage, argv)
    status = attr_with_role(a, attr, role, role_c)
    if (status /= DRAGON_SUCCESS) return
    status = dragon_process_group_add(group, int(n, c_int32_t), argv, a)
  end function

  ! argv for C: every trimmed string with its NUL, one after the other in `storage`, and
  ! `argv` pointing at each, then NULL. Both must live as long as argv is used.
  subroutine c_argv(args, storage, argv)
    character(len=*), intent(in) :: args(:)
    character(kind=c_char, len=:), allocatable, target, intent(out) :: storage
    type(c_ptr), allocatable, intent(out) :: argv(:)
    integer :: i, at, total
    total = 0
    do i = 1, size(args)
      total = total + len_trim(args(i)) + 1
    end do
    allocate(character(kind=c_char, len=max(total, 1)) :: storage)
    allocate(argv(size(args) + 1))
    at = 1
    do i = 1, size(args)
      storage(at:at + len_trim(args(i))) = trim(args(i)) // c_null_char
      argv(i) = c_loc(storage(at:at))
      at = at + len_trim(args(i)) + 1
    end do
    argv(size(args) + 1) = c_null_ptr
  end subroutine

  ! attr (or the defaults), with role_c holding the role and a%role pointing at it.
  function attr_with_role(a, attr, role, role_c) result(status)
    type(dragon_process_attr_t), intent(out) :: a
    type(dragon_process_attr_t), intent(in), optional :: attr
    character(len=*), intent(in), optional :: role
    character(kind=c_char, len=:), allocatable, target, intent(out) :: role_c
    integer(c_int) :: status
    status = DRAGON_SUCCESS
    if (present(attr)) then
      a = attr
    else
      status = dragon_process_attr_init(a)
      if (status /= DRAGON_SUCCESS) return
    end if
    if (present(role)) then
      role_c = trim(role) // c_null_char
      a%role = c_loc(role_c(1:1))
    end if
  end function

end module dragon
