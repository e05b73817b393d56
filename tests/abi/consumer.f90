! Built against the installed library with `pkg-config --cflags --libs dragon-fortran` only:
! the C ABI through the installed module `dragon`. Argument 1: the version pkg-config names.
program consumer
  use, intrinsic :: iso_c_binding
  use, intrinsic :: iso_fortran_env, only: error_unit
  use dragon
  implicit none

  type(c_ptr) :: pool, mem, channel, queue, lock, bad
  type(dragon_pool_attr_t) :: pattr
  type(dragon_channel_attr_t) :: cattr
  type(dragon_process_attr_t) :: prattr
  type(dragon_policy_t) :: policy
  type(dragon_pool_stats_t) :: stats
  real(c_double), pointer :: values(:)
  integer(c_int64_t), target :: sent(4), got(4), item, back
  integer(c_int8_t), target :: desc(DRAGON_POOL_DESCRIPTOR_MAX), garbage(24)
  integer(c_size_t) :: n, qsize, qmax
  integer(c_int) :: locked, major, minor, patch
  character(len=64) :: expected
  character(len=:), allocatable :: message
  integer :: i

  ! The string helpers: the loaded library's version is the one pkg-config names.
  call get_command_argument(1, expected)
  if (dragon_version_string() /= trim(expected)) then
    write (error_unit, '(4a)') 'version: ', dragon_version_string(), ' /= ', trim(expected)
    stop 1
  end if
  call check(dragon_version_numbers(major, minor, patch), 'version numbers')
  call check(dragon_version_numbers(major), 'version numbers, one of three')
  if (dragon_strerror_string(DRAGON_TIMEOUT) == '') stop 2
  if (len(f_c_string('name   ')) /= 5) stop 3

  ! The attr types are as large as the C structs (the init functions set struct_size).
  call check(dragon_pool_attr_init(pattr), 'pool attr')
  call check(dragon_channel_attr_init(cattr), 'channel attr')
  call check(dragon_process_attr_init(prattr), 'process attr')
  call check(dragon_policy_init(policy), 'policy')
  if (pattr%struct_size /= c_sizeof(pattr) .or. cattr%struct_size /= c_sizeof(cattr) .or. &
      prattr%struct_size /= c_sizeof(prattr) .or. policy%struct_size /= c_sizeof(policy)) then
    write (error_unit, '(a)') 'a bind(C) type differs in size from its C struct'
    stop 4
  end if
  if (pattr%node_id /= -1 .or. policy%host_id /= -1 .or. prattr%in_mode /= DRAGON_STDIO_DEVNULL) &
    stop 5

  ! A pool: allocate, write and read in place, statistics, serialize, free.
  call check(dragon_pool_create(f_c_string('consumer-f90'), 65536_c_size_t, pattr, pool), &
             'pool create')
  call check(dragon_pool_alloc(pool, int(100 * 8, c_size_t), mem), 'alloc')
  call c_f_pointer(mem, values, [100])
  values = [(real(i, c_double), i = 1, 100)]
  if (abs(sum(values) - 5050.0_c_double) > 0.0_c_double) stop 6
  stats%struct_size = c_sizeof(stats)
  call check(dragon_pool_stats(pool, stats), 'stats')
  if (stats%allocation_count /= 1 .or. stats%total_bytes < 65536) stop 7
  call check(dragon_pool_serialize(pool, c_loc(desc), int(size(desc), c_size_t), n), &
             'serialize')
  if (n < 1 .or. n > size(desc)) stop 8
  call check(dragon_pool_free(pool, mem), 'free')

  ! A channel: send four numbers, receive them in order.
  call check(dragon_channel_create(pool, 8_c_size_t, 16_c_size_t, channel=channel), &
             'channel create')
  sent = [3_c_int64_t, 1_c_int64_t, 4_c_int64_t, 1_c_int64_t]
  do i = 1, 4
    call check(dragon_channel_send(channel, c_loc(sent(i)), c_sizeof(sent(i)), &
                                   DRAGON_TIMEOUT_TRY), 'send')
  end do
  do i = 1, 4
    call check(dragon_channel_recv(channel, c_loc(got(i)), c_sizeof(got(i)), n, &
                                   dragon_seconds(5.0_c_double)), 'recv')
    if (n /= c_sizeof(got(i))) stop 9
  end do
  if (any(got /= sent)) stop 10
  call check(dragon_channel_destroy(channel), 'channel destroy')

  ! A queue: put, size, get, and an empty get that times out.
  call check(dragon_queue_create(pool, 4_c_size_t, 0_c_size_t, cattr, queue), 'queue create')
  item = 42
  call check(dragon_queue_put(queue, c_loc(item), c_sizeof(item), DRAGON_TIMEOUT_FOREVER), 'put')
  call check(dragon_queue_size(queue, qsize, qmax), 'queue size')
  if (qsize /= 1 .or. qmax /= 4) stop 11
  call check(dragon_queue_get(queue, c_loc(back), c_sizeof(back), n, DRAGON_TIMEOUT_FOREVER), &
             'get')
  if (back /= 42 .or. n /= c_sizeof(back)) stop 12
  if (dragon_queue_get(queue, c_loc(back), c_sizeof(back), n, DRAGON_TIMEOUT_TRY) &
      /= DRAGON_TIMEOUT) stop 13
  call check(dragon_queue_destroy(queue), 'queue destroy')

  ! A lock: acquire, locked, release; a second release is refused.
  call check(dragon_lock_create(pool, 0, lock=lock), 'lock create')
  call check(dragon_lock_acquire(lock, DRAGON_TIMEOUT_FOREVER), 'acquire')
  call check(dragon_lock_locked(lock, locked), 'locked')
  if (locked /= 1) stop 14
  call check(dragon_lock_release(lock), 'release')
  if (dragon_lock_release(lock) /= DRAGON_INVALID_ARGUMENT) stop 15
  call check(dragon_lock_destroy(lock), 'lock destroy')

  ! Garbage is not a descriptor, and the detailed message says so.
  garbage = 7_c_int8_t
  if (dragon_pool_attach_serialized(c_loc(garbage), int(size(garbage), c_size_t), bad) &
      /= DRAGON_BAD_DESCRIPTOR) stop 16
  message = dragon_last_error_string()
  if (len(message) == 0) stop 17

  call check(dragon_pool_destroy(pool), 'pool destroy')
  print '(4a)', 'Fortran consumer: libdragon ', dragon_version_string(), ': ok; a failed attach: ', &
    message

contains

  subroutine check(status, what)
    integer(c_int), intent(in) :: status
    character(len=*), intent(in) :: what
    if (status /= DRAGON_SUCCESS) then
      write (error_unit, '(5a)') what, ': ', dragon_strerror_string(status), ': ', &
        dragon_last_error_string()
      stop 1
    end if
  end subroutine

end program consumer
