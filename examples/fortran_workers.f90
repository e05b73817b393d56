! Example: the runtime from Fortran. Run it with `dragon fortran-workers`.
!
! The program creates a pool and a queue in it, names the queue in the runtime's registry,
! and asks the runtime to start 4 copies of itself in the role "worker" as a process group.
! Each worker finds the queue by name and puts one number computed from its rank, the cube
! of rank + 1. The first process sums what comes back, checks the exact result, waits for
! the workers, and destroys what it created.
program fortran_workers
  use, intrinsic :: iso_c_binding
  use, intrinsic :: iso_fortran_env, only: output_unit, error_unit
  use dragon
  implicit none

  integer, parameter :: workers = 4
  character(len=*), parameter :: queue_name = 'fortran-workers/results'

  if (dragon_process_role_string() == 'worker') then
    call worker()
  else
    call main()
  end if

contains

  subroutine main()
    type(c_ptr) :: pool, queue, group
    integer(c_int8_t), target :: desc(DRAGON_OBJECT_DESCRIPTOR_MAX)
    integer(c_int64_t), target :: value
    integer(c_int64_t) :: total, expected
    integer(c_int64_t) :: puid
    integer(c_int) :: ended, code
    integer(c_size_t) :: n
    integer :: i

    ! Outside a runtime nothing below could work: say so before creating anything.
    if (dragon_process_self(puid) == DRAGON_NOT_IN_RUNTIME) then
      call fail('not started by the runtime: run it as `dragon fortran-workers`')
    end if
    call check(dragon_pool_create(f_c_string('fortran-workers'), 1048576_c_size_t, pool=pool), &
               'create the pool')
    call check(dragon_queue_create(pool, 16_c_size_t, 0_c_size_t, queue=queue), &
               'create the queue')
    call check(dragon_queue_serialize(queue, c_loc(desc), int(size(desc), c_size_t), n), &
               'serialize the queue')
    call check(dragon_registry_register(f_c_string(queue_name), DRAGON_REGISTRY_QUEUE, &
                                        c_loc(desc), n, 0), 'register the queue')
    print '(3a)', 'pool and queue created; the queue is named ', queue_name, ' in the registry'

    call check(dragon_process_group_create(group=group), 'create the group')
    call check(dragon_process_group_add_args(group, workers, [dragon_process_self_exe_string()], &
                                             role='worker'), 'add the workers')
    call check(dragon_process_group_start(group), 'start the workers')
    print '(a,i0,a)', 'the runtime started ', workers, &
      ' workers: this program in the role ''worker'''
    flush (output_unit)

    total = 0
    do i = 1, workers
      call check(dragon_queue_get(queue, c_loc(value), c_sizeof(value), n, &
                                  dragon_seconds(30.0_c_double)), 'get a result')
      if (n /= c_sizeof(value)) call fail('a result of the wrong size')
      total = total + value
    end do
    expected = 0
    do i = 1, workers
      expected = expected + int(i, c_int64_t)**3
    end do
    call check(dragon_process_group_join(group, dragon_seconds(30.0_c_double)), &
               'wait for the workers')
    do i = 0, workers - 1
      call check(dragon_process_group_member(group, int(i, c_int32_t), puid, ended, code), &
                 'a worker''s end')
      if (ended == 0 .or. code /= 0) call fail('a worker failed')
    end do
    print '(a,i0,a,i0,a,i0,a)', 'sum of the cubes 1..', workers, ' from the workers: ', total, &
      ' (expected ', expected, ')'

    call check(dragon_process_group_destroy(group), 'free the group')
    call check(dragon_registry_unregister(f_c_string(queue_name)), 'unregister the queue')
    call check(dragon_queue_destroy(queue), 'destroy the queue')
    call check(dragon_pool_destroy(pool), 'destroy the pool')
    if (total /= expected) call fail('the sum is wrong')
    print '(a)', 'every worker exited with 0; pool and queue destroyed'
  end subroutine

  subroutine worker()
    type(c_ptr) :: queue
    integer(c_int32_t) :: rank, size
    integer(c_int64_t), target :: value

    call check(dragon_process_group_rank(rank, size), 'group rank')
    if (size /= workers) call fail('a group of the wrong size')
    call check(dragon_registry_attach_queue(f_c_string(queue_name), dragon_seconds(30.0_c_double), &
                                            queue=queue), 'attach the queue')
    value = int(rank + 1, c_int64_t)**3
    call check(dragon_queue_put(queue, c_loc(value), c_sizeof(value), &
                                dragon_seconds(30.0_c_double)), 'put the result')
    call check(dragon_queue_detach(queue), 'detach the queue')
  end subroutine

  subroutine check(status, what)
    integer(c_int), intent(in) :: status
    character(len=*), intent(in) :: what
    if (status /= DRAGON_SUCCESS) then
      call fail(what // ': ' // dragon_strerror_string(status) // ': ' // &
                dragon_last_error_string())
    end if
  end subroutine

  subroutine fail(why)
    character(len=*), intent(in) :: why
    write (error_unit, '(2a)') 'fortran-workers: ', why
    stop 1, quiet=.true.
  end subroutine

end program fortran_workers
