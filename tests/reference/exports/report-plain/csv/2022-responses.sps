* Encoding: UTF-8.
* sheping 0.1.0: reads the responses export of round 2022 (2022年度履职评估(测试)).
* Write it with: sheping export responses --round 2022 --out 2022-responses.csv
* or download it from the console (results page) or the API: /api/v1/rounds/2022/exports/responses
* Change the FILE path below if the CSV is elsewhere (relative paths are read from the current directory).

GET DATA
  /TYPE=TXT
  /FILE='2022-responses.csv'
  /ENCODING='UTF8'
  /ARRANGEMENT=DELIMITED
  /FIRSTCASE=2
  /DELIMITERS=","
  /QUALIFIER='"'
  /VARIABLES=
    respondent_id A13
    unit A18
    unit_code A8
    unit_kind A12
    sector A8
    category A12
    operator A8
    attempt_no F8.0
    interview_at YMDHMS19
    duration_secs F18.6
    outcome A8
    aapor_code A8
    scored F8.0
    duties_level F8.0
    duties_score F18.6
    efficiency_level F8.0
    efficiency_score F18.6
    service_level F8.0
    service_score F18.6
    conduct_level F8.0
    conduct_score F18.6
    reputation_level F8.0
    reputation_score F18.6
    respondent_score F18.6
    satisfied_share F18.6
.

FORMATS interview_at (DATETIME20).

VARIABLE LABELS
  respondent_id '受访者化名编号(本轮内稳定,不可反推身份)'
  unit '参评单位'
  unit_code '单位代码'
  unit_kind '单位类型(党政机关/事业单位)'
  sector '系统'
  category '代表类别'
  operator '话务员(登录名)'
  attempt_no '该代表的第几次拨打'
  interview_at '访问时间(本地时间)'
  duration_secs '访问时长(秒,从领取到提交;导入的记录为空)'
  outcome '拨打结果'
  aapor_code 'AAPOR 结果代码'
  scored '是否计入得分(1=是,0=否)'
  duties_level '职能职责履行:等级序号(1=最好)'
  duties_score '职能职责履行:等级分值'
  efficiency_level '办事效率:等级序号(1=最好)'
  efficiency_score '办事效率:等级分值'
  service_level '服务质量:等级序号(1=最好)'
  service_score '服务质量:等级分值'
  conduct_level '作风形象:等级序号(1=最好)'
  conduct_score '作风形象:等级分值'
  reputation_level '社会反响:等级序号(1=最好)'
  reputation_score '社会反响:等级分值'
  respondent_score '受访者得分(各维度分值加权和,完成访问才有)'
  satisfied_share '满意答案占比(计为满意的等级,完成访问才有)'.

VALUE LABELS
  outcome
    'complete' '完成'
    'partial' '部分完成'
 /scored
    1 '计入'
    0 '不计入'
 /duties_level efficiency_level service_level conduct_level reputation_level
    1 '满意'
    2 '比较满意'
    3 '基本满意'
    4 '不满意'
.

VARIABLE LEVEL scored (NOMINAL).
VARIABLE LEVEL duties_level efficiency_level service_level conduct_level reputation_level (ORDINAL).
VARIABLE LEVEL attempt_no interview_at duration_secs duties_score efficiency_score service_score conduct_score reputation_score respondent_score satisfied_share (SCALE).
EXECUTE.
